package engine

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// FaultEnv is the fault-injection variable the kill tests use: NPMIR_FAULT=<point>:<n> makes the
// process SIGKILL itself the n-th time (1-based) any op reaches <point>. Points, in op order:
// after-started (state and audit say started, nothing sent), mid (between the op's read and its
// write), after-apply (the write landed, nothing recorded), after-audit (audit says done, state
// does not), after-done (fully recorded).
const FaultEnv = "NPMIR_FAULT"

// FaultPoints lists the valid points in the order an op reaches them.
var FaultPoints = []string{"after-started", "mid", "after-apply", "after-audit", "after-done"}

// Fault is a parsed NPMIR_FAULT; a nil *Fault never fires.
type Fault struct {
	point string
	n     int64
	count atomic.Int64
}

// ParseFault reads the variable's value ("" → nil).
func ParseFault(v string) (*Fault, error) {
	if v == "" {
		return nil, nil
	}
	point, ns, ok := strings.Cut(v, ":")
	n, err := strconv.Atoi(ns)
	valid := false
	for _, p := range FaultPoints {
		valid = valid || p == point
	}
	if !ok || err != nil || n < 1 || !valid {
		return nil, fmt.Errorf("%s=%q: want <point>:<n> with point one of %s", FaultEnv, v, strings.Join(FaultPoints, ", "))
	}
	return &Fault{point: point, n: int64(n)}, nil
}

// Hit is called at each point; it kills the process when the configured hit is reached.
func (f *Fault) Hit(point string) {
	if f == nil || point != f.point {
		return
	}
	if f.count.Add(1) == f.n {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // never returns: the kernel delivers SIGKILL
	}
}
