package etcdlock_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/agentlock/agentlock/lock/etcdlock"
)

// slack is what a bounded call may take beyond its bound in these
// tests. The promise is 50ms; the machine running the tests may be
// loaded (-race, two cores shared with other jobs), so the tests allow
// more, but far less than the operation timeout that a synchronous
// cleanup used to add.
const slack = 700 * time.Millisecond

// outageOpTimeout is the backends' WithOpTimeout in the outage tests.
const outageOpTimeout = 3 * time.Second

// proxiedBackend returns a backend on a fresh prefix that reaches etcd
// through a proxy the test can pause, with a session that outlives the
// test's outage, and the proxy and the prefix. The test closes the
// backend: Close is one of the calls whose bound it checks.
func proxiedBackend(t *testing.T) (*etcdlock.Backend, *proxy, string) {
	t.Helper()
	p := newProxy(t)
	_, prefix := newBackend(t)
	b, err := etcdlock.New(clientAt(t, p.addr()), etcdlock.WithPrefix(prefix), etcdlock.WithTTL(30*time.Second),
		etcdlock.WithOpTimeout(outageOpTimeout))
	require.NoError(t, err)
	return b, p, prefix
}

// bounded runs f and fails t if it takes longer than bound+slack.
func bounded(t *testing.T, what string, bound time.Duration, f func() error) error {
	t.Helper()
	start := time.Now()
	err := f()
	d := time.Since(start)
	t.Logf("%s: %v after %v (bound %v)", what, err, d.Round(time.Millisecond), bound)
	assert.Less(t, d, bound+slack, "%s outlived its bound", what)
	return err
}

// withTimeout calls f with a context that expires after d.
func withTimeout(d time.Duration, f func(ctx context.Context) error) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		return f(ctx)
	}
}

// TestOutageBounds: while etcd cannot be reached (a proxy holding every
// byte, the session still alive), every blocking call returns within
// its deadline plus a small bound, and Release and SetPurpose within
// one WithOpTimeout. When etcd is back, the background retry removes
// every key the calls left, and after Close no goroutine is left.
func TestOutageBounds(t *testing.T) {
	leftover := noGoroutinesLeft(t)
	b, p, prefix := proxiedBackend(t)
	held := coordinator(t, b, "held")
	busy := coordinator(t, b, "busy")
	ob := newBackendAt(t, prefix)
	other := coordinator(t, ob, "busy")
	ctx := context.Background()
	l, err := held.Acquire(ctx)
	require.NoError(t, err)
	ol, err := other.Acquire(ctx) // so that Acquire must wait on "busy"
	require.NoError(t, err)

	p.pause()
	const d = 500 * time.Millisecond
	err = bounded(t, "Acquire (deadline)", d, withTimeout(d, func(ctx context.Context) error {
		_, err := busy.Acquire(ctx)
		return err
	}))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	err = bounded(t, "Acquire (cancelled)", d, func() error {
		ctx, cancel := context.WithCancel(context.Background())
		defer time.AfterFunc(d, cancel).Stop()
		_, err := busy.Acquire(ctx)
		return err
	})
	assert.ErrorIs(t, err, context.Canceled)
	err = bounded(t, "TryAcquire", d, withTimeout(d, func(ctx context.Context) error {
		_, err := busy.TryAcquire(ctx)
		return err
	}))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	err = bounded(t, "Holder", d, withTimeout(d, func(ctx context.Context) error {
		_, err := busy.Holder(ctx)
		return err
	}))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	err = bounded(t, "Put", d, withTimeout(d, func(ctx context.Context) error {
		return b.Put(ctx, l, prefix+"data", "x")
	}))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	err = bounded(t, "SetPurpose", outageOpTimeout, func() error { return l.SetPurpose("x") })
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	err = bounded(t, "Release", outageOpTimeout, l.Release)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	select {
	case <-l.Lost():
		t.Fatal("the session was given up during the test: the TTL is too short for this machine")
	default:
	}

	// Back: the keys of the failed joins and of the failed Release go.
	p.resume()
	require.Eventually(t, func() bool {
		return len(queueKeys(t, prefix, "held")) == 0 && len(queueKeys(t, prefix, "busy")) == 1
	}, 20*time.Second, 20*time.Millisecond, "keys left: %v %v", queueKeys(t, prefix, "held"), queueKeys(t, prefix, "busy"))
	l, err = held.TryAcquire(ctx)
	require.NoError(t, err)
	require.NoError(t, l.Release())
	require.NoError(t, ol.Release())

	require.NoError(t, b.Close())
	require.NoError(t, ob.Close())
	leftover()
}

// TestBlackHole: against an endpoint that accepts connections and never
// answers, the first acquisition (which must grant the session) and
// Holder return at their deadline, and Close returns within one
// WithOpTimeout, leaving no goroutine.
func TestBlackHole(t *testing.T) {
	leftover := noGoroutinesLeft(t)
	cli := clientAt(t, blackHole(t))
	b, err := etcdlock.New(cli, etcdlock.WithOpTimeout(outageOpTimeout))
	require.NoError(t, err)
	c := coordinator(t, b, "hole")
	const d = 300 * time.Millisecond
	for _, wait := range []bool{true, false} {
		err = bounded(t, "acquisition", d, withTimeout(d, func(ctx context.Context) error {
			var err error
			if wait {
				_, err = c.Acquire(ctx)
			} else {
				_, err = c.TryAcquire(ctx)
			}
			return err
		}))
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	}
	err = bounded(t, "Holder", d, withTimeout(d, func(ctx context.Context) error {
		_, err := c.Holder(ctx)
		return err
	}))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	bounded(t, "Close", outageOpTimeout, b.Close)
	leftover()
}

// TestOutageCloseBounded: Close while etcd cannot be reached, with a
// session to revoke and a cleanup pending, returns within one
// WithOpTimeout and leaves no goroutine.
func TestOutageCloseBounded(t *testing.T) {
	leftover := noGoroutinesLeft(t)
	b, p, _ := proxiedBackend(t)
	l, err := coordinator(t, b, "close").Acquire(context.Background())
	require.NoError(t, err)
	p.pause()
	defer p.resume()
	bounded(t, "Release", outageOpTimeout, l.Release)
	bounded(t, "Close", outageOpTimeout, b.Close)
	leftover()
}

// TestReleaseLost: Release of a lease whose Lost is closed returns
// ErrLost at once, without a round trip, even when etcd cannot be
// reached.
func TestReleaseLost(t *testing.T) {
	b, p, prefix := proxiedBackend(t)
	defer b.Close()
	c := coordinator(t, b, "lost")
	l, err := c.Acquire(context.Background())
	require.NoError(t, err)

	// End the session from outside, as an expiry would, then cut the
	// backend off.
	direct, _ := client()
	lease := leaseOf(t, prefix, "lost")
	_, err = direct.Revoke(context.Background(), lease)
	require.NoError(t, err)
	select {
	case <-l.Lost():
	case <-time.After(long):
		t.Fatal("Lost not closed after the lease was revoked")
	}
	p.pause()
	defer p.resume()
	err = bounded(t, "SetPurpose of a lost lease", 0, func() error { return l.SetPurpose("x") })
	assert.ErrorIs(t, err, etcdlock.ErrLost)
	err = bounded(t, "Release of a lost lease", 0, l.Release)
	assert.ErrorIs(t, err, etcdlock.ErrLost)
}

// leaseOf returns the lease of the holder of the lock name.
func leaseOf(t *testing.T, prefix, name string) clientv3.LeaseID {
	t.Helper()
	cli, _ := client()
	resp, err := cli.Get(context.Background(), queuePrefix(prefix, name), clientv3.WithFirstCreate()...)
	require.NoError(t, err)
	require.NotEmpty(t, resp.Kvs, "no holder of %s", name)
	return clientv3.LeaseID(resp.Kvs[0].Lease)
}

// TestLateJoin: a join of the queue applied after the cleanup of its
// key (its answer was lost, and it was still in flight when the
// cleanup landed) leaves no key that would hold the lock for as long
// as the session lives.
func TestLateJoin(t *testing.T) {
	b, prefix := newBackend(t)
	ctx := context.Background()
	require.NoError(t, b.LateJoin(ctx, "late"))
	assert.Empty(t, queueKeys(t, prefix, "late"), "the late join put its key back")
	l, err := coordinator(t, newBackendAt(t, prefix), "late").TryAcquire(ctx)
	require.NoError(t, err)
	require.NoError(t, l.Release())
}
