// Package inventory finds every consumer of known-bad npm package versions in
// lockfiles, SBOMs and manifests, fast enough to sweep an organisation mid-incident.
//
// The worst failure of an inventory is a false "clean": a file that could not be
// read must never be counted as having no findings. Scan therefore reports every
// unreadable or unparsable file as an error entry beside the findings, and the
// hand-written scanners (package-lock, yarn, pnpm, bun) return what they could
// extract together with an error naming the file and line of the first problem.
package inventory
