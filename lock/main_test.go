package lock_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"testing"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/locktest"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

func fileBackend(dir string) (lock.Backend, error) { return lock.NewFileBackend(dir) }

// mutexBackend is the named-mutex backend for the conformance suite.
// Kernel mutexes are machine-wide whatever dir is, so each dir gets its
// own names (see prefixBackend): the suite expects locks in different
// directories, and in different runs, to be independent.
func mutexBackend(dir string) (lock.Backend, error) {
	b, err := lock.NewNamedMutexBackend(lock.WithMutexDir(dir))
	if err != nil {
		return nil, err
	}
	h := fnv.New32a()
	h.Write([]byte(dir))
	return &prefixBackend{b: b, prefix: fmt.Sprintf("t%08x-", h.Sum32())}, nil
}

// envBackend selects the backend of child processes: the conformance
// test of the named-mutex backend sets it, and children inherit it.
const envBackend = "AGENTLOCK_TEST_BACKEND"

func backendFromEnv(dir string) (lock.Backend, error) {
	if os.Getenv(envBackend) == "mutex" {
		return mutexBackend(dir)
	}
	return fileBackend(dir)
}

// The child roles of this package's own tests; the conformance suite's
// are locktest's Role constants.
const (
	roleHold    = "hold"
	roleTry     = "try"
	roleHandoff = "handoff"
)

func TestMain(m *testing.M) {
	proctest.Role(roleHold, holdRole)
	proctest.Role(roleTry, tryRole)
	proctest.Role(roleHandoff, handoffRole)
	locktest.Main(m, backendFromEnv)
}

func TestFileBackendConformance(t *testing.T) { locktest.Run(t, fileBackend) }

func TestNamedMutexBackendConformance(t *testing.T) {
	t.Setenv(envBackend, "mutex")
	locktest.Run(t, mutexBackend)
}

// prefixBackend prefixes lock names before passing them on.
type prefixBackend struct {
	b      lock.Backend
	prefix string
}

func (p *prefixBackend) Acquire(ctx context.Context, req lock.Request) (lock.Grant, error) {
	name := req.Name
	req.Name = p.prefix + name
	g, err := p.b.Acquire(ctx, req)
	var be *lock.BusyError
	if errors.As(err, &be) {
		be.Name = name
	}
	return g, err
}

func (p *prefixBackend) Holder(ctx context.Context, name string) (lock.Holder, error) {
	h, err := p.b.Holder(ctx, p.prefix+name)
	var ae *lock.AbandonedError
	if errors.As(err, &ae) {
		ae.Name = name
	}
	return h, err
}
