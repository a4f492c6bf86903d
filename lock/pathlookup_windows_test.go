package lock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/internal/oslock"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

// TestBusyAndHolderLookNoPathUp: a file this package has open cannot be
// removed or renamed on Windows, so once a process has a lock's holder
// file open (a read-only view for Holder, or the page after an
// acquisition attempt), neither Holder nor a TryAcquire that finds the
// lock busy looks the file's path up again to check that it is still
// the file there (each lookup opens the file by its path).
func TestBusyAndHolderLookNoPathUp(t *testing.T) {
	forKinds(t, func(t *testing.T, kind string) {
		dir, name := proctest.TempDir(t), lockName(t)
		ch := proctest.Start(t, roleHold, kind, dir, name)
		ch.Expect("held", 30*time.Second)
		c := mustCoordinator(t, kind, dir, name)
		holder := func() {
			t.Helper()
			if h, err := c.Holder(context.Background()); err != nil || h.PID != ch.PID() {
				t.Fatalf("Holder = %+v, %v; want pid %d", h, err, ch.PID())
			}
		}
		try := func() {
			t.Helper()
			_, err := c.TryAcquire(context.Background())
			var be *lock.BusyError
			if !errors.As(err, &be) || be.Holder.PID != ch.PID() {
				t.Fatalf("TryAcquire = %v; want busy with holder pid %d", err, ch.PID())
			}
		}
		lookups := func(what string, f func()) {
			t.Helper()
			f() // opens what it needs
			before := oslock.PathLookups()
			for i := 0; i < 10; i++ {
				f()
			}
			if n := oslock.PathLookups() - before; n != 0 {
				t.Errorf("10 calls of %s looked paths up %d times, want 0", what, n)
			}
		}
		lookups("Holder before any acquisition", holder)
		lookups("TryAcquire on a busy lock", try)
		lookups("Holder after an acquisition attempt", holder)
	})
}

// TestWaitAfterNoLookupIsNotMoved: an acquisition that skips the check
// of its files' paths (they cannot move while open) still records them
// as checked, so that a later wait does not take them for moved and
// retry at once, over and over, instead of sleeping.
func TestWaitAfterNoLookupIsNotMoved(t *testing.T) {
	dir := proctest.TempDir(t)
	c, err := lock.New("notmoved", lock.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if lock.FileLockMoved(dir, "notmoved") {
		t.Fatal("after an acquisition, the lock's files count as moved")
	}
}
