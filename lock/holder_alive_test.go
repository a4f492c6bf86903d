package lock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

// TestHolderSeesDeathOfCachedHolder: Holder answers repeated calls for
// a live holder in another process from what it cached for the record
// (on Linux a pidfd it polls, not a read of /proc), yet the first call
// after the holder is killed says the lock is not held, although the
// record did not change.
func TestHolderSeesDeathOfCachedHolder(t *testing.T) {
	forKinds(t, func(t *testing.T, kind string) {
		dir, name := proctest.TempDir(t), lockName(t)
		ch := proctest.Start(t, roleHold, kind, dir, name)
		ch.Expect("held", 30*time.Second)
		c := mustCoordinator(t, kind, dir, name)
		for i := 0; i < 3; i++ {
			if h, err := c.Holder(context.Background()); err != nil || h.PID != ch.PID() {
				t.Fatalf("Holder = %+v, %v; want pid %d", h, err, ch.PID())
			}
		}
		ch.Kill()
		ch.Wait(30 * time.Second)
		h, err := c.Holder(context.Background())
		if !errors.Is(err, lock.ErrNotHeld) {
			t.Fatalf("Holder after the holder was killed = %+v, %v; want ErrNotHeld", h, err)
		}
	})
}
