package state

import "sync"

// groupCommit lets concurrent changes share one durable write. Each change bumps version under
// the owner's mutex and waits until a write that began after it is done; one waiter writes for
// all, so hundreds of ops recording their progress at once cost a few writes, not hundreds.
// The state file, the audit log and the evidence manifest all use it.
type groupCommit struct {
	mu      *sync.Mutex
	cond    *sync.Cond
	version uint64 // changes made
	saved   uint64 // changes durable on disk
	saving  bool
	err     error // sticky: after a failed write nothing is acknowledged again
}

func newGroupCommit(mu *sync.Mutex) groupCommit {
	return groupCommit{mu: mu, cond: sync.NewCond(mu)}
}

// changed records one change (call with the mutex held) and returns its version.
func (g *groupCommit) changed() uint64 {
	g.version++
	return g.version
}

// waitLocked returns once version mine is durable. It is called with the mutex held and returns
// with it held. snapshot, called with the mutex held, captures what to write and returns the
// function that writes it; that function runs with the mutex released.
func (g *groupCommit) waitLocked(mine uint64, snapshot func() (write func() error)) error {
	for g.saved < mine && g.err == nil {
		if g.saving {
			g.cond.Wait()
			continue
		}
		g.saving = true
		v := g.version
		write := snapshot()
		g.mu.Unlock()
		err := write()
		g.mu.Lock()
		g.saving = false
		if err != nil {
			g.err = err
		} else {
			g.saved = v
		}
		g.cond.Broadcast()
	}
	return g.err
}
