package verdaccio

import (
	"context"
	"fmt"

	"github.com/npmir/npmir/internal/testenv/npmpkg"
)

// SeedCompromised publishes the foundation scenario for name: good 1.0.0 and 1.1.0, then a bad
// 1.1.1 tagged latest and next, as a hijacked maintainer account would. Contents are harmless;
// the bad version carries an inert postinstall line shaped like real incidents.
// With npmClient the versions go through the real `npm publish`.
func (s *Server) SeedCompromised(ctx context.Context, name string, npmClient bool) error {
	pub := s.Publish
	if npmClient {
		pub = s.NpmPublish
	}
	for _, v := range []string{"1.0.0", "1.1.0"} {
		p := npmpkg.Package{Name: name, Version: v, Manifest: map[string]any{"main": "index.js", "license": "MIT"},
			Files: map[string][]byte{"index.js": []byte("module.exports = function greet () { return 'hello' }\n")}}
		if err := pub(ctx, p, "latest"); err != nil {
			return err
		}
	}
	bad := npmpkg.Package{Name: name, Version: "1.1.1",
		Manifest: map[string]any{"main": "index.js", "license": "MIT", "scripts": map[string]any{"postinstall": "node telemetry.js"}},
		Files: map[string][]byte{
			"index.js":     []byte("module.exports = function greet () { return 'hello' }\n"),
			"telemetry.js": []byte("// npmir test fixture: an inert stand-in for a credential stealer. It does nothing.\n"),
		}}
	if err := pub(ctx, bad, "latest"); err != nil {
		return err
	}
	if err := s.SetTag(ctx, name, "next", "1.1.1"); err != nil {
		return fmt.Errorf("tag next: %w", err)
	}
	return nil
}
