package lock_test

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentlock/agentlock/lock"
)

// panicBackend is a Backend whose Acquire panics, and whose grants'
// Release panics the first time.
type panicBackend struct{ acquirePanics bool }

func (b *panicBackend) Acquire(ctx context.Context, req lock.Request) (lock.Grant, error) {
	if b.acquirePanics {
		panic("backend bug")
	}
	return &panicGrant{h: req.Holder}, nil
}

func (b *panicBackend) Holder(context.Context, string) (lock.Holder, error) {
	return lock.Holder{}, lock.ErrNotHeld
}

type panicGrant struct {
	h        lock.Holder
	releases atomic.Int32
}

func (g *panicGrant) Holder() lock.Holder             { return g.h }
func (g *panicGrant) Abandoned() bool                 { return false }
func (g *panicGrant) Lost() <-chan struct{}           { return nil }
func (g *panicGrant) SetPurpose(purpose string) error { return nil }
func (g *panicGrant) Release() error {
	if g.releases.Add(1) == 1 {
		panic("release bug")
	}
	return nil
}

// recovered runs f and reports whether it panicked.
func recovered(f func()) (panicked bool) {
	defer func() { panicked = recover() != nil }()
	f()
	return false
}

// TestBackendPanicLeavesNoDropGuard: a waiting Acquire whose backend
// panics (and whose caller recovers) leaves nothing for the garbage
// collector to release later, and a Lease whose Grant.Release panics is
// never released a second time by the collector: a Grant is released at
// most once.
func TestBackendPanicLeavesNoDropGuard(t *testing.T) {
	c, err := lock.New("panics", lock.WithBackend(&panicBackend{acquirePanics: true}))
	if err != nil {
		t.Fatal(err)
	}
	if !recovered(func() { c.Acquire(context.Background()) }) {
		t.Fatal("the backend's panic did not reach the caller")
	}
	for range 5 {
		runtime.GC() // a leftover guard would release a nil grant and crash
	}

	c, err = lock.New("panics", lock.WithBackend(&panicBackend{}))
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var g *panicGrant
	if err := l.Raw(func(gr lock.Grant) error { g = gr.(*panicGrant); return nil }); err != nil {
		t.Fatal(err)
	}
	runtime.GC() // the lease, still held, gets its finalizer
	runtime.GC()
	if !recovered(func() { l.Release() }) {
		t.Fatal("the grant's panic did not reach the caller")
	}
	if err := l.Release(); !errors.Is(err, lock.ErrReleased) {
		t.Fatalf("second Release: %v", err)
	}
	l = nil
	// Finalizers run on their own goroutine some time after a
	// collection: give a wrong second release time to show.
	for range 20 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		if n := g.releases.Load(); n != 1 {
			t.Fatalf("Grant.Release called %d times, want once", n)
		}
	}
}
