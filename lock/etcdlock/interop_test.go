package etcdlock_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/etcdlock"
)

// The tests in this file run concurrency.Mutex, the code behind
// `etcdctl lock PREFIX+NAME`, against the backend's lock NAME.

// mutexOf returns a Mutex on the lock name, with a session of its own
// (TTL ttl seconds) that the test ends.
func mutexOf(t *testing.T, prefix, name string, ttl int) (*concurrency.Mutex, *concurrency.Session) {
	t.Helper()
	cli, err := client()
	require.NoError(t, err)
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(ttl))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return concurrency.NewMutex(s, prefix+name), s
}

// TestMutexExclusion: agentlock holders and concurrency.Mutex holders of
// one lock never hold it at once. Two of each increment a counter kept
// in etcd (read, then write, unfenced) under the lock; the count ends
// exact, and no holder ever saw another inside.
func TestMutexExclusion(t *testing.T) {
	const n = 25
	_, prefix := newBackend(t)
	key := prefix + "counter"
	cli, _ := client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*long)
	defer cancel()
	var inside, overlaps atomic.Int32
	increment := func() error {
		if inside.Add(1) != 1 {
			overlaps.Add(1)
		}
		defer inside.Add(-1)
		resp, err := cli.Get(ctx, key)
		if err != nil {
			return err
		}
		v := 0
		if len(resp.Kvs) > 0 {
			v, _ = strconv.Atoi(string(resp.Kvs[0].Value))
		}
		time.Sleep(time.Millisecond) // widen the read-modify-write, so that an overlap would show
		_, err = cli.Put(ctx, key, strconv.Itoa(v+1))
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 2; i++ {
		c := coordinator(t, newBackendAt(t, prefix), "shared")
		m, _ := mutexOf(t, prefix, "shared", 60)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < n; j++ {
				l, err := c.Acquire(ctx)
				if err != nil {
					errs <- fmt.Errorf("agentlock: %w", err)
					return
				}
				err = increment()
				if rerr := l.Release(); err == nil {
					err = rerr
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < n; j++ {
				if err := m.Lock(ctx); err != nil {
					errs <- fmt.Errorf("mutex: %w", err)
					return
				}
				err := increment()
				if uerr := m.Unlock(ctx); err == nil {
					err = uerr
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Zero(t, overlaps.Load(), "holders overlapped")
	resp, err := cli.Get(context.Background(), key)
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	assert.Equal(t, strconv.Itoa(4*n), string(resp.Kvs[0].Value))
}

// acquireAsync runs c.Acquire(ctx) in a goroutine: its lease arrives
// on the channel, or nil after an error (which fails t).
func acquireAsync(t *testing.T, ctx context.Context, c *lock.Coordinator) <-chan *lock.Lease {
	got := make(chan *lock.Lease, 1)
	go func() {
		l, err := c.Acquire(ctx)
		assert.NoError(t, err)
		got <- l
	}()
	return got
}

// blocked fails t if done is closed within a short while: the waiter
// behind it must still be waiting.
func blocked[T any](t *testing.T, done <-chan T, what string) {
	t.Helper()
	select {
	case <-done:
		t.Fatalf("%s did not wait for the holder", what)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestMutexHandoff: the lock passes from an agentlock holder to a
// waiting Mutex, and from a Mutex holder to a waiting agentlock
// Acquire, when the holder lets go (the sessions' TTL is a minute,
// so nothing expires), and a lock agentlock has used is free for a
// Mutex (no key that is not a holder stays in its prefix).
func TestMutexHandoff(t *testing.T) {
	b, prefix := newBackend(t, etcdlock.WithTTL(60*time.Second))
	c := coordinator(t, b, "handoff")
	m, _ := mutexOf(t, prefix, "handoff", 60)
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()

	// A lock agentlock took and released is free for a Mutex.
	l, err := c.Acquire(ctx)
	require.NoError(t, err)
	require.NoError(t, l.Release())
	require.NoError(t, m.TryLock(ctx), "a free lock that agentlock used")
	require.NoError(t, m.Unlock(ctx))

	// agentlock → Mutex.
	l, err = c.Acquire(ctx)
	require.NoError(t, err)
	locked := make(chan error, 1)
	go func() { locked <- m.Lock(ctx) }()
	blocked(t, locked, "Mutex.Lock")
	start := time.Now()
	require.NoError(t, l.Release())
	select {
	case err := <-locked:
		require.NoError(t, err)
		t.Logf("agentlock → Mutex handoff: %v", time.Since(start))
	case <-time.After(long):
		t.Fatal("Mutex.Lock did not get the lock after Release")
	}

	// Mutex → agentlock.
	got := acquireAsync(t, ctx, c)
	blocked(t, got, "Acquire")
	_, err = c.TryAcquire(ctx)
	require.ErrorIs(t, err, lock.ErrBusy)
	start = time.Now()
	require.NoError(t, m.Unlock(ctx))
	select {
	case l := <-got:
		require.NotNil(t, l)
		t.Logf("Mutex → agentlock handoff: %v", time.Since(start))
		assert.False(t, l.Abandoned(), "the Mutex holder unlocked")
		require.NoError(t, b.Put(ctx, l, prefix+"data", "x"))
		require.NoError(t, l.Release())
	case <-time.After(long):
		t.Fatal("Acquire did not get the lock after Unlock")
	}
}

// TestForeignHolder: an agentlock caller behind a Mutex holder is told
// so: TryAcquire's BusyError and Holder report a foreign holder with the
// Mutex key's create revision as its token, and the error names the
// key and its lease.
func TestForeignHolder(t *testing.T) {
	b, prefix := newBackend(t)
	c := coordinator(t, b, "foreign")
	m, s := mutexOf(t, prefix, "foreign", 60)
	ctx := context.Background()
	require.NoError(t, m.Lock(ctx))
	cli, _ := client()
	resp, err := cli.Get(ctx, m.Key())
	require.NoError(t, err)
	rev := resp.Kvs[0].CreateRevision

	_, err = c.TryAcquire(ctx)
	var be *lock.BusyError
	require.ErrorAs(t, err, &be)
	assert.True(t, be.Holder.Foreign)
	assert.Equal(t, uint64(rev), be.Holder.Token)
	assert.Contains(t, err.Error(), m.Key())
	assert.Contains(t, err.Error(), fmt.Sprintf("%x", int64(s.Lease())))
	h, err := c.Holder(ctx)
	require.NoError(t, err)
	assert.True(t, h.Foreign)
	assert.Equal(t, uint64(rev), h.Token)
	require.NoError(t, m.Unlock(ctx))
	_, err = c.Holder(ctx)
	assert.ErrorIs(t, err, lock.ErrNotHeld)
}

// TestForeignHolderExpires: a Mutex holder whose session ends without
// unlocking (its process died) hands the lock to the agentlock waiter
// behind it after the TTL, and the waiter's lease says Abandoned; an
// agentlock holder that dies the same way hands it to a waiting Mutex.
func TestForeignHolderExpires(t *testing.T) {
	b, prefix := newBackend(t)
	c := coordinator(t, b, "expires")
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	m, s := mutexOf(t, prefix, "expires", 1)
	require.NoError(t, m.Lock(ctx))

	got := acquireAsync(t, ctx, c)
	blocked(t, got, "Acquire")
	s.Orphan() // stop keeping it alive: it expires
	var l *lock.Lease
	select {
	case l = <-got:
		require.NotNil(t, l)
		assert.True(t, l.Abandoned(), "the Mutex holder's session expired while it held the lock")
	case <-time.After(long):
		t.Fatal("the lock was not freed after the Mutex holder's session expired")
	}

	// agentlock holder dies (its backend's lease revoked from outside):
	// a waiting Mutex gets the lock.
	m2, _ := mutexOf(t, prefix, "expires", 60)
	locked := make(chan error, 1)
	go func() { locked <- m2.Lock(ctx) }()
	blocked(t, locked, "Mutex.Lock")
	cli, _ := client()
	_, err := cli.Revoke(ctx, leaseOf(t, prefix, "expires"))
	require.NoError(t, err)
	select {
	case err := <-locked:
		require.NoError(t, err)
	case <-time.After(long):
		t.Fatal("the Mutex waiter did not get the lock after the agentlock holder's session ended")
	}
	assert.ErrorIs(t, l.Release(), etcdlock.ErrLost)
	require.NoError(t, m2.Unlock(ctx))
}
