// Package forensics answers the verify stage's question "what did the suspect versions change, and
// are they malicious?": it fetches packuments and tarballs, reads tarballs safely in memory, diffs
// each suspect version against the last known-good one, applies IOC rules and gives a verdict.
package forensics

import (
	"context"
	"io"
	"time"

	"github.com/npmir/npmir/internal/npmreg"
)

// Source is where Verify reads packages from. *npmreg.Client satisfies it; tests use fakes.
type Source interface {
	Packument(ctx context.Context, name string, write bool) (*npmreg.Packument, error)
	Tarball(ctx context.Context, url string) (io.ReadCloser, error)
}

// RawPackumentSource is optionally implemented by a Source that can return the packument exactly as
// the registry sent it; evidence is then byte-faithful instead of a re-encoding of the typed struct.
type RawPackumentSource interface {
	RawPackument(ctx context.Context, name string) ([]byte, error)
}

// EvidenceSink preserves what Verify fetched. *state.EvidenceStore satisfies it. Both methods must
// be idempotent: a resumed verify saves the same bytes again.
type EvidenceSink interface {
	SavePackument(name, sourceURL string, raw []byte) (path, sha256 string, err error)
	SaveTarball(name, version, sourceURL string, r io.Reader) (path, sha256 string, err error)
}

// Publish is one publish event, used to detect bursts across a maintainer's packages.
type Publish struct {
	Package string    `json:"package"`
	Version string    `json:"version"`
	Time    time.Time `json:"time"`
}

// Request says what to verify.
type Request struct {
	Package string
	// Versions are the suspect versions. When empty, every version published at or after Since is
	// suspect.
	Versions []string
	Since    time.Time
	// KnownGood overrides the derived last known-good version.
	KnownGood string
	// Rules are the IOC rules; DefaultRules() when nil.
	Rules *RuleSet
	// Limits bound the tarball reader; zero fields take DefaultLimits' values.
	Limits Limits
	// Evidence, when set, receives the packument and the suspect tarballs.
	Evidence EvidenceSink
	// Peers are publishes of the maintainer's other packages (from a search the caller did), so a
	// burst across packages is seen; this package's own publishes come from its packument.
	Peers []Publish
	// Now stamps the report; time.Now when nil.
	Now func() time.Time
}

// Severity ranks a finding. The verdict is derived from the highest severity present.
type Severity string

// Severities, lowest first.
const (
	SeverityInfo   Severity = "info"
	SeverityLow    Severity = "low"
	SeverityMedium Severity = "medium"
	SeverityHigh   Severity = "high"
)

func (s Severity) rank() int {
	switch s {
	case SeverityHigh:
		return 3
	case SeverityMedium:
		return 2
	case SeverityLow:
		return 1
	}
	return 0
}

// Verdict is the judgement on one version. Scoring: a verdict is the highest severity among a version's findings:
//
//   - any high finding → malicious. High is kept for indicators specific to a known incident (a
//     payload hash, file name or string, an incident's install script) and for tampering that no
//     legitimate publish produces (an integrity mismatch, "../" paths in the archive).
//   - else any medium finding → suspicious. Medium is for generic signals that a legitimate release
//     can show but a responder must look at: a lifecycle script added or changed, a new dependency
//     in a patch release, a high-entropy file, a publisher never seen before, provenance dropped, a
//     publish burst, links in the archive, an archive the reader could not finish.
//   - else → clean. Low and info findings (a dependency bump, a minified file, a changed main) are
//     reported but do not move the verdict.
//
// Contain acts on malicious versions and asks about suspicious ones. Severities live in the rules
// file, so a team can retune a signal without a rebuild.
type Verdict string

// Verdicts.
const (
	VerdictMalicious  Verdict = "malicious"
	VerdictSuspicious Verdict = "suspicious"
	VerdictClean      Verdict = "clean"
)

// Finding is one reason behind a verdict.
type Finding struct {
	RuleID   string   `json:"rule_id"`
	Severity Severity `json:"severity"`
	// Category groups findings: ioc, metadata, integrity, archive, diff, content.
	Category string `json:"category"`
	Message  string `json:"message"`
	// Path is the file inside the package the finding is about, if any.
	Path string `json:"path,omitempty"`
	// Match is what matched (a string, a hash, a script line), if any.
	Match  string `json:"match,omitempty"`
	Source string `json:"source,omitempty"`
}

// Report is the verify result for one package.
type Report struct {
	SchemaVersion int       `json:"schema_version"`
	Package       string    `json:"package"`
	GeneratedAt   time.Time `json:"generated_at"`
	RulesVersion  string    `json:"rules_version"`
	// KnownGood is the version suspects are compared with; KnownGoodFrom says how it was chosen:
	// "derived", "override" or "none".
	KnownGood     string          `json:"known_good,omitempty"`
	KnownGoodFrom string          `json:"known_good_from"`
	Versions      []VersionReport `json:"versions"`
	// Findings about the package as a whole (unpublished versions, a known-good that matches IOCs).
	Findings []Finding `json:"findings"`
	// Evidence lists what was preserved, when an EvidenceSink was given.
	Evidence []EvidenceRef `json:"evidence,omitempty"`
}

// EvidenceRef names one preserved file.
type EvidenceRef struct {
	Path    string `json:"path"`
	SHA256  string `json:"sha256"`
	Kind    string `json:"kind"`
	Version string `json:"version,omitempty"`
}

// VersionReport is the verify result for one suspect version.
type VersionReport struct {
	Version     string       `json:"version"`
	PublishedAt *time.Time   `json:"published_at,omitempty"`
	Verdict     Verdict      `json:"verdict"`
	Integrity   Integrity    `json:"integrity"`
	Tarball     TarballStats `json:"tarball"`
	Diff        *Diff        `json:"diff,omitempty"`
	Findings    []Finding    `json:"findings"`
}

// TarballStats describes what the reader saw.
type TarballStats struct {
	URL               string `json:"url"`
	CompressedBytes   int64  `json:"compressed_bytes"`
	UncompressedBytes int64  `json:"uncompressed_bytes"`
	Entries           int    `json:"entries"`
	// Complete is false when a limit or a malformed archive stopped the reader early.
	Complete bool `json:"complete"`
}
