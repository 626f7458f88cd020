package steps

import (
	"testing"

	"github.com/npmir/npmir/internal/runbook"
)

// The shipped runbooks use only registered kinds with valid parameters.
func TestDefaultRunbookKinds(t *testing.T) {
	t.Parallel()
	for _, n := range runbook.Names() {
		if _, err := runbook.Load(n, RunbookLookup); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}
