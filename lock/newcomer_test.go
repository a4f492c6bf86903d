package lock_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

// dropLease takes the lock and throws the lease away, in a function of
// its own so that nothing on the test's stack keeps it reachable.
//
//go:noinline
func dropLease(t *testing.T, c *lock.Coordinator) {
	_, err := c.TryAcquire(context.Background())
	require.NoError(t, err)
}

// A Lease dropped without Release is released by the garbage collector,
// as an os.File is closed: another process can then take the lock.
func TestDroppedLeaseReleasedByGC(t *testing.T) {
	for _, kind := range []string{"file", "mutex"} {
		t.Run(kind, func(t *testing.T) {
			dir := proctest.TempDir(t)
			name := "dropped-" + kind
			c, err := newCoordinator(kind, dir, name)
			require.NoError(t, err)
			dropLease(t, c)

			ch := proctest.Start(t, roleTry, kind, dir, name)
			require.Equal(t, fmt.Sprint("busy ", os.Getpid()), ch.Expect("busy", 30*time.Second),
				"the dropped lease holds the lock until it is collected")
			require.NoError(t, ch.Wait(30*time.Second))

			deadline := time.Now().Add(30 * time.Second)
			for {
				runtime.GC()
				if _, err := c.Holder(context.Background()); errors.Is(err, lock.ErrNotHeld) {
					break
				}
				require.True(t, time.Now().Before(deadline), "the dropped lease was never released")
				time.Sleep(10 * time.Millisecond) // the cleanup runs when the collector gets to it: no event
			}
			ch = proctest.Start(t, roleTry, kind, dir, name)
			ch.Expect("got false", 30*time.Second)
			require.NoError(t, ch.Wait(30*time.Second))
		})
	}
}

// A released lease is not released a second time when it is collected,
// whether it was released before any collection (it never had a
// finalizer) or after collections that gave it its finalizer: a later
// holder keeps the lock.
func TestReleasedLeaseCollectedKeepsNextHolder(t *testing.T) {
	for _, gcs := range []int{0, 3} {
		t.Run(fmt.Sprint(gcs, " collections while held"), func(t *testing.T) {
			dir := proctest.TempDir(t)
			c := newC(t, dir, "collected")
			func() {
				l, err := c.TryAcquire(context.Background())
				require.NoError(t, err)
				for range gcs {
					runtime.GC()
				}
				require.NoError(t, l.Release())
			}()
			next, err := c.TryAcquire(context.Background())
			require.NoError(t, err)
			for range 5 {
				runtime.GC()
				time.Sleep(5 * time.Millisecond) // time for a wrongly kept finalizer to run
			}
			h, err := c.Holder(context.Background())
			require.NoError(t, err, "the next holder must still hold the lock")
			assert.Equal(t, next.Token(), h.Token)
			require.NoError(t, next.Release())
		})
	}
}

// A wait that ends with its context says how long it waited and who
// held the lock, and matches both the context's error and *BusyError.
func TestAcquireGaveUpError(t *testing.T) {
	for _, kind := range []string{"file", "mutex"} {
		t.Run(kind, func(t *testing.T) {
			dir := proctest.TempDir(t)
			holder, err := newCoordinator(kind, dir, "gave-up")
			require.NoError(t, err)
			l, err := holder.Acquire(context.Background(), lock.WithPurpose("installing Office 97"))
			require.NoError(t, err)
			defer l.Release()

			waiter, err := newCoordinator(kind, dir, "gave-up")
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, err = waiter.Acquire(ctx)
			require.Error(t, err)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			var busy *lock.BusyError
			require.ErrorAs(t, err, &busy)
			assert.Equal(t, os.Getpid(), busy.Holder.PID)
			assert.Equal(t, "installing Office 97", busy.Holder.Purpose)
			assert.Equal(t, "gave-up", busy.Name)
			want := fmt.Sprintf(`^lock gave-up: gave up after \d+(\.\d+)?m?s: held by pid %d \(installing Office 97\) since \d\d:\d\d:\d\d\.\d{3}: context deadline exceeded$`, os.Getpid())
			assert.Regexp(t, regexp.MustCompile(want), err.Error())

			ctx, cancel = context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			_, err = waiter.Acquire(ctx)
			assert.ErrorIs(t, err, context.Canceled)
			assert.ErrorAs(t, err, &busy)
			assert.True(t, strings.HasSuffix(err.Error(), ": context canceled"), err.Error())
		})
	}
}

// Holder.String names pid, host, purpose, since and token, and never
// the raw boot id.
func TestHolderString(t *testing.T) {
	since := time.Date(2026, 12, 2, 4, 31, 7, 123e6, time.UTC)
	h := lock.Holder{PID: 4242, Host: "build-7", Purpose: "installing Office 97", Since: since,
		Token: 1764649867123456789, ProcessStart: 99, BootID: [16]byte{0xde, 0xad, 0xbe, 0xef}}
	assert.Equal(t, "pid 4242 on build-7 (installing Office 97) since 2026-12-02 04:31:07.123 +0000 UTC, token 1764649867123456789", h.String())
	assert.NotContains(t, fmt.Sprint(h), "de ad")
	assert.NotContains(t, fmt.Sprint(h), "222") // 0xde as a decimal byte
	h.Purpose = ""
	assert.Equal(t, "pid 4242 on build-7 since 2026-12-02 04:31:07.123 +0000 UTC, token 1764649867123456789", h.String())
	assert.Equal(t, "no holder record", lock.Holder{}.String())
}
