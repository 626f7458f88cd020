// Package sim runs simulated systems over real HTTP, for tests and for `npmir rehearse`. Registry
// is an npm registry serving the routes of reference/apis.md with the public registry's JSON shapes,
// deterministic for a seed, with modes (OTP challenge, 429 + Retry-After, latency, faults) and
// counters that prove "a dry run wrote nothing" and "every op landed once".
//
// sim imports none of npmir's providers: it is the other side of the wire, so a simulator bug cannot
// hide a client bug.
package sim
