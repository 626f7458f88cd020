// Package runbooks embeds the runbooks npmir ships. Teams copy one (`npmir runbook show NAME >
// mine.yaml`), edit it, and pass `--runbook mine.yaml`.
package runbooks

import "embed"

// FS holds every shipped runbook, one YAML file each, named <name>.yaml.
//
//go:embed *.yaml
var FS embed.FS

// Default is the runbook `npmir contain` uses when --runbook is not given.
const Default = "npm-maintainer-compromise"
