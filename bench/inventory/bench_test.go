// Package bench holds the inventory benchmarks: the hand-written scanners
// against a generic parse of the same file, and Scan over a corpus. They are
// benchmarks, not timed tests; bench/inventory/README.md records figures.
//
//	go test ./bench/inventory/ -run '^$' -bench . -benchmem
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/npmir/npmir/bench/inventory/corpus"
	"github.com/npmir/npmir/internal/inventory"
)

func fixture(b *testing.B, rel string) []byte {
	b.Helper()
	p := filepath.Join("..", "..", "..", "shared", "fixtures", filepath.FromSlash(rel))
	data, err := os.ReadFile(p)
	if err != nil {
		b.Fatalf("fixture %s (the repository must sit next to shared/): %v", p, err)
	}
	return data
}

func benchExtract(b *testing.B, f inventory.Format, data []byte) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := inventory.ExtractFormat(f, data); err != nil {
			b.Fatal(err)
		}
	}
}

// The generic baselines decode the same bytes with a general-purpose
// library, into the loosest shape (any) and, where it helps the library, a
// typed struct holding only the fields inventory reads. They extract less
// than the scanners (no alias or name resolution), so they flatter the
// libraries.

func benchGeneric(b *testing.B, data []byte, decode func([]byte) error) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExtractNpmLock(b *testing.B) {
	data := fixture(b, "lockfiles/real/npm-cli/package-lock.json")
	b.Run("npmir", func(b *testing.B) { benchExtract(b, inventory.FormatNpmLock, data) })
	b.Run("encoding-json-any", func(b *testing.B) {
		benchGeneric(b, data, func(d []byte) error { var v any; return json.Unmarshal(d, &v) })
	})
	b.Run("encoding-json-typed", func(b *testing.B) {
		benchGeneric(b, data, func(d []byte) error {
			var v struct {
				LockfileVersion int `json:"lockfileVersion"`
				Packages        map[string]struct {
					Name    string `json:"name"`
					Version string `json:"version"`
				} `json:"packages"`
			}
			return json.Unmarshal(d, &v)
		})
	})
}

func BenchmarkExtractYarnBerry(b *testing.B) {
	data := fixture(b, "lockfiles/real/jest/yarn.lock")
	b.Run("npmir", func(b *testing.B) { benchExtract(b, inventory.FormatYarnLock, data) })
	// Berry lockfiles are YAML.
	b.Run("yaml-v3-any", func(b *testing.B) {
		benchGeneric(b, data, func(d []byte) error { var v map[string]any; return yaml.Unmarshal(d, &v) })
	})
	b.Run("yaml-v3-typed", func(b *testing.B) {
		benchGeneric(b, data, func(d []byte) error {
			var v map[string]struct {
				Version    string `yaml:"version"`
				Resolution string `yaml:"resolution"`
			}
			return yaml.Unmarshal(d, &v)
		})
	})
}

// yarn v1 is its own format: no general-purpose Go library reads it, so
// there is no generic baseline.
func BenchmarkExtractYarnV1(b *testing.B) {
	data := fixture(b, "lockfiles/real/webpack/yarn.lock")
	b.Run("npmir", func(b *testing.B) { benchExtract(b, inventory.FormatYarnLock, data) })
}

func BenchmarkExtractPnpmLock(b *testing.B) {
	data := fixture(b, "lockfiles/real/vue-core/pnpm-lock.yaml")
	b.Run("npmir", func(b *testing.B) { benchExtract(b, inventory.FormatPnpmLock, data) })
	b.Run("yaml-v3-any", func(b *testing.B) {
		benchGeneric(b, data, func(d []byte) error { var v map[string]any; return yaml.Unmarshal(d, &v) })
	})
	b.Run("yaml-v3-typed", func(b *testing.B) {
		benchGeneric(b, data, func(d []byte) error {
			var v struct {
				LockfileVersion string               `yaml:"lockfileVersion"`
				Packages        map[string]yaml.Node `yaml:"packages"`
				Snapshots       map[string]yaml.Node `yaml:"snapshots"`
			}
			return yaml.Unmarshal(d, &v)
		})
	})
}

var trailingComma = regexp.MustCompile(`,(\s*[}\]])`)

func BenchmarkExtractBunLock(b *testing.B) {
	data := fixture(b, "lockfiles/real/hono/bun.lock")
	b.Run("npmir", func(b *testing.B) { benchExtract(b, inventory.FormatBunLock, data) })
	// encoding/json refuses trailing commas, so the baseline strips them
	// first, as ad-hoc scripts do.
	b.Run("strip-commas+encoding-json-any", func(b *testing.B) {
		benchGeneric(b, data, func(d []byte) error {
			var v any
			return json.Unmarshal(trailingComma.ReplaceAll(d, []byte("$1")), &v)
		})
	})
}

func BenchmarkExtractCycloneDX(b *testing.B) {
	data := fixture(b, "sbom/cyclonedx/juice-shop-nested.cdx.json")
	b.Run("npmir", func(b *testing.B) { benchExtract(b, inventory.FormatCycloneDX, data) })
	b.Run("encoding-json-typed", func(b *testing.B) {
		type comp struct {
			Purl       string `json:"purl"`
			BOMRef     string `json:"bom-ref"`
			Components []json.RawMessage
		}
		benchGeneric(b, data, func(d []byte) error {
			var v struct {
				Components []comp `json:"components"`
			}
			return json.Unmarshal(d, &v)
		})
	})
}

var (
	corpusOnce sync.Once
	corpusDir  string
	corpusErr  error
)

var benchTargets = []inventory.Target{{Name: "debug", Version: "4.4.2"}, {Name: "chalk", Version: "5.6.1"}, {Name: "ansi-styles", Version: "6.2.2"}}

// benchCorpus builds a 40-folder corpus (about 19 MB, a fifth of the one
// compare.sh builds) once per run.
func benchCorpus(b *testing.B) string {
	corpusOnce.Do(func() {
		dir, err := os.MkdirTemp("", "npmir-bench-corpus")
		if err != nil {
			corpusErr = err
			return
		}
		corpusDir = dir
		_, corpusErr = corpus.Build(filepath.Join("..", "..", "..", "shared", "fixtures", "lockfiles", "real"), dir, 40, benchTargets)
	})
	if corpusErr != nil {
		b.Fatal(corpusErr)
	}
	return corpusDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if corpusDir != "" {
		os.RemoveAll(corpusDir)
	}
	os.Exit(code)
}

func benchScan(b *testing.B, opts inventory.Options) {
	dir := benchCorpus(b)
	var size int64
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if st, err := d.Info(); err == nil {
				size += st.Size()
			}
		}
		return nil
	})
	opts.Paths = []string{dir}
	opts.Targets = inventory.NewTargets(benchTargets...)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := inventory.Scan(context.Background(), opts)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Findings) == 0 || len(res.Errors) > 0 {
			b.Fatalf("%d findings, errors %v", len(res.Findings), res.Errors)
		}
	}
}

func BenchmarkScanCorpus(b *testing.B) {
	b.Run("prefilter", func(b *testing.B) { benchScan(b, inventory.Options{}) })
	b.Run("no-prefilter", func(b *testing.B) { benchScan(b, inventory.Options{NoPrefilter: true}) })
	b.Run("one-worker", func(b *testing.B) { benchScan(b, inventory.Options{Concurrency: 1}) })
}

// BenchmarkPrefilter is the cost of ruling a file out: the needle search
// over a lockfile that never mentions the target.
func BenchmarkPrefilter(b *testing.B) {
	data := fixture(b, "lockfiles/real/jest/yarn.lock")
	needle := []byte("@ctrl/tinycolor")
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		if bytes.Contains(data, needle) {
			b.Fatal("unexpected mention")
		}
	}
}
