package lock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/locktest"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

// TestHolderNamesDeadHolder: Holder of a lock whose holder was killed
// holding it says so with an *AbandonedError naming the dead holder
// (matching ErrNotHeld), until the next acquisition, which reports
// Abandoned; after a clean release Holder reports a plain ErrNotHeld.
func TestHolderNamesDeadHolder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     string
		backend func(string) (lock.Backend, error)
	}{
		{"file", "", fileBackend},
		{"mutex", "mutex", mutexBackend},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(envBackend, tc.env)
			dir := proctest.TempDir(t)
			b, err := tc.backend(dir)
			require.NoError(t, err)
			c, err := lock.New("dead", lock.WithBackend(b))
			require.NoError(t, err)

			ch := proctest.Start(t, locktest.RoleHold, dir, "dead", "installing")
			ch.Expect("waiting", time.Minute)
			ch.Expect("locked", time.Minute)
			pid := ch.PID()
			ch.Kill()
			ch.Wait(time.Minute)

			_, err = c.Holder(context.Background())
			require.ErrorIs(t, err, lock.ErrNotHeld)
			var ae *lock.AbandonedError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, "dead", ae.Name)
			require.Equal(t, pid, ae.Last.PID)
			require.Equal(t, "installing", ae.Last.Purpose)
			require.Contains(t, err.Error(), "died")

			l, err := c.TryAcquire(context.Background())
			require.NoError(t, err)
			require.True(t, l.Abandoned())
			require.NoError(t, l.Release())
			_, err = c.Holder(context.Background())
			require.ErrorIs(t, err, lock.ErrNotHeld)
			require.False(t, errors.As(err, &ae), "a clean release reported as abandoned: %v", err)
		})
	}
}
