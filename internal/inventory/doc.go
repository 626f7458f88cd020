// Package inventory finds every consumer of known-bad npm package versions in
// lockfiles, SBOMs and manifests, fast enough to sweep an organisation mid-incident.
//
// The worst failure of an inventory is a false "clean": a file that could not be
// read must never be counted as having no findings. Scan therefore reports every
// unreadable or unparsable file as an error entry beside the findings, and the
// hand-written scanners (package-lock, yarn, pnpm, bun, CycloneDX, SPDX) return
// what they could extract together with an error naming the file and line of
// the first problem.
//
// Speed comes from three things: a prefilter (a file that never mentions a
// target name together with one of its bad versions cannot pin it, and gets
// only a structural check), scanners that walk the bytes in place instead of
// decoding into maps, and a second, slower pass that builds the dependency
// graph only for files where a target matched.
//
// Where a finding's direct/transitive relation, workspace and path come from:
//
//   - package-lock v2/v3: install locations and Node's resolution (nearest
//     node_modules up the tree, links followed to workspaces); exact.
//   - package-lock v1 and yarn v1: these lockfiles do not record the project's
//     own dependencies. With a package.json beside the lockfile they are exact;
//     without one, entries nothing else requires are taken as direct and the
//     relation of other top-level entries is "unknown" (paths are still given).
//   - yarn berry, pnpm 5/6/9, bun: importers/workspaces and dependency lists;
//     exact. pnpm 9 paths run over snapshots, so peer variants are told apart.
//   - CycloneDX: the BOM's dependencies graph rooted at metadata.component;
//     "unknown" when the BOM has no graph.
//   - SPDX (including GitHub's export): always "unknown"; GitHub relates every
//     package straight to the repository, which says nothing either way.
//   - package.json exposures are direct by definition; node_modules package.json
//     ("installed") findings carry no relation.
package inventory
