package etcdlock_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/etcdlock"
)

func coordinator(t *testing.T, b *etcdlock.Backend, name string, opts ...lock.Option) *lock.Coordinator {
	t.Helper()
	c, err := lock.New(name, append([]lock.Option{lock.WithBackend(b)}, opts...)...)
	require.NoError(t, err)
	return c
}

// queuePrefix is the prefix of the queue keys of the lock name: the
// prefix that concurrency.NewMutex(session, prefix+name) uses.
func queuePrefix(prefix, name string) string { return prefix + name + "/" }

// queueKeys lists the queue keys of name, oldest first.
func queueKeys(t testing.TB, prefix, name string) []string {
	t.Helper()
	cli, err := client()
	require.NoError(t, err)
	resp, err := cli.Get(context.Background(), queuePrefix(prefix, name), clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	require.NoError(t, err)
	var keys []string
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
	}
	return keys
}

func revision(t *testing.T) int64 {
	t.Helper()
	cli, err := client()
	require.NoError(t, err)
	resp, err := cli.Get(context.Background(), "revision-probe")
	require.NoError(t, err)
	return resp.Header.Revision
}

func TestOptions(t *testing.T) {
	cli, err := client()
	require.NoError(t, err)
	for _, o := range []etcdlock.Option{
		etcdlock.WithPrefix(""),
		etcdlock.WithPrefix("agentlock/site"), // would mix with "agentlock/site1"
		etcdlock.WithTTL(0),
		etcdlock.WithTTL(1500 * time.Millisecond),
		etcdlock.WithOpTimeout(0),
		{},
	} {
		_, err := etcdlock.New(cli, o)
		assert.ErrorIs(t, err, lock.ErrInvalidOption)
	}
	_, err = etcdlock.New(nil)
	assert.ErrorIs(t, err, lock.ErrInvalidOption)
}

// TestRecord: the queue key's value is the documented JSON record, and
// Holder reads it back; a record that is not one is ErrCorrupt.
func TestRecord(t *testing.T) {
	b, prefix := newBackend(t)
	c := coordinator(t, b, "rec", lock.WithPurpose("installing X"))
	ctx := context.Background()
	l, err := c.Acquire(ctx)
	require.NoError(t, err)

	keys := queueKeys(t, prefix, "rec")
	require.Len(t, keys, 1)
	cli, _ := client()
	resp, err := cli.Get(ctx, keys[0])
	require.NoError(t, err)
	kv := resp.Kvs[0]
	assert.Equal(t, l.Token(), uint64(kv.CreateRevision), "token = create revision")
	var rec map[string]any
	require.NoError(t, json.Unmarshal(kv.Value, &rec), "value %s", kv.Value)
	assert.EqualValues(t, 1, rec["v"])
	assert.EqualValues(t, l.Holder().PID, rec["pid"])
	assert.Equal(t, "installing X", rec["purpose"])
	since, err := time.Parse(time.RFC3339Nano, rec["since"].(string))
	require.NoError(t, err)
	assert.True(t, since.Equal(l.Holder().Since))

	h, err := c.Holder(ctx)
	require.NoError(t, err)
	assert.Equal(t, l.Holder().PID, h.PID)
	assert.Equal(t, l.Token(), h.Token)
	assert.True(t, h.Since.Equal(l.Holder().Since))
	require.NoError(t, l.Release())

	// An agentlock queue key (lease id, "-", a number; with that
	// lease) whose value is not a record: the lock is held by it, and
	// its record is corrupt.
	g, err := cli.Grant(ctx, 60)
	require.NoError(t, err)
	defer cli.Revoke(ctx, g.ID)
	bad := fmt.Sprintf("%s%016x-1", queuePrefix(prefix, "rec"), int64(g.ID))
	_, err = cli.Put(ctx, bad, "not a record", clientv3.WithLease(g.ID))
	require.NoError(t, err)
	_, err = c.Holder(ctx)
	assert.ErrorIs(t, err, lock.ErrCorrupt)
	_, err = c.TryAcquire(ctx)
	var be *lock.BusyError
	require.ErrorAs(t, err, &be)
	assert.Zero(t, be.Holder.PID)
	assert.False(t, be.Holder.Foreign)
	_, err = cli.Delete(ctx, bad)
	require.NoError(t, err)

	// Any other key in the queue is a foreign holder (here one
	// without a lease, written by hand).
	_, err = cli.Put(ctx, queuePrefix(prefix, "rec")+"by-hand", "")
	require.NoError(t, err)
	h, err = c.Holder(ctx)
	require.NoError(t, err)
	assert.True(t, h.Foreign)
	assert.Contains(t, h.Purpose, "by-hand")
	_, err = c.TryAcquire(ctx)
	require.ErrorAs(t, err, &be)
	assert.True(t, be.Holder.Foreign)
}

// TestBusyWritesNothing: TryAcquire on a held lock and Holder leave
// etcd's revision unchanged: they write nothing.
func TestBusyWritesNothing(t *testing.T) {
	b, prefix := newBackend(t)
	a := coordinator(t, b, "busy", lock.WithPurpose("a"))
	o := coordinator(t, newBackendAt(t, prefix), "busy")
	ctx := context.Background()
	l, err := a.Acquire(ctx)
	require.NoError(t, err)
	before := revision(t)
	for i := 0; i < 10; i++ {
		_, err := o.TryAcquire(ctx)
		var be *lock.BusyError
		require.ErrorAs(t, err, &be)
		assert.Equal(t, "a", be.Holder.Purpose)
		assert.Equal(t, l.Token(), be.Holder.Token)
		_, err = o.Holder(ctx)
		require.NoError(t, err)
	}
	assert.Equal(t, before, revision(t), "TryAcquire or Holder wrote to etcd")
	require.NoError(t, l.Release())
}

// TestCancelRemovesQueueKey: a cancelled Acquire leaves no queue key
// behind (it is removed with a context that is not the cancelled one).
func TestCancelRemovesQueueKey(t *testing.T) {
	b, prefix := newBackend(t)
	a := coordinator(t, b, "cancel")
	w := coordinator(t, newBackendAt(t, prefix), "cancel")
	l, err := a.Acquire(context.Background())
	require.NoError(t, err)
	for _, d := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond, 50 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		_, err := w.Acquire(ctx)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
		// The removal runs in the background once the call returned.
		assert.Eventually(t, func() bool { return len(queueKeys(t, prefix, "cancel")) == 1 },
			long, 5*time.Millisecond, "after a wait cancelled at %v", d)
	}
	require.NoError(t, l.Release())
	assert.Empty(t, queueKeys(t, prefix, "cancel"))
}

// TestRetriedReleaseSparesNewerKey (etcd issue 22082): a Release that
// is repeated after another acquisition took the lock does not delete
// that acquisition's key, nor mark the lock released.
func TestRetriedReleaseSparesNewerKey(t *testing.T) {
	b, prefix := newBackend(t)
	a := coordinator(t, b, "retry")
	o := coordinator(t, newBackendAt(t, prefix), "retry")
	ctx := context.Background()
	l, err := a.Acquire(ctx)
	require.NoError(t, err)
	g := b.GrantOf(l)
	require.NotNil(t, g)
	require.NoError(t, l.Release())

	// Same session, same backend, then another.
	for _, c := range []*lock.Coordinator{a, o} {
		l2, err := c.Acquire(ctx)
		require.NoError(t, err)
		err = g.Release() // the retry
		assert.ErrorIs(t, err, etcdlock.ErrLost)
		h, err := c.Holder(ctx)
		require.NoError(t, err)
		assert.Equal(t, l2.Token(), h.Token, "the retried Release deleted the newer key")
		require.NoError(t, l2.Release())
		l3, err := c.TryAcquire(ctx)
		require.NoError(t, err)
		assert.False(t, l3.Abandoned(), "the retried Release overwrote the released marker")
		require.NoError(t, l3.Release())
	}
}

// TestWaiterSessionExpires (etcd issue 11456): a waiter whose session
// ends while it waits is not granted the lock on the dead session; it
// starts over with a new one, and the lock it gets is real.
func TestWaiterSessionExpires(t *testing.T) {
	b, prefix := newBackend(t)
	a := coordinator(t, b, "expire")
	wb := newBackendAt(t, prefix, etcdlock.WithTTL(time.Second))
	w := coordinator(t, wb, "expire")
	ctx := context.Background()
	l, err := a.Acquire(ctx)
	require.NoError(t, err)

	got := acquireAsync(t, ctx, w)
	var keys []string
	require.Eventually(t, func() bool {
		keys = queueKeys(t, prefix, "expire")
		return len(keys) == 2
	}, 10*time.Second, time.Millisecond)

	// Revoke the waiter's lease (as its expiry would) and release the
	// lock right after: the waiter's wait ends with its own key gone.
	base := keys[1][strings.LastIndexByte(keys[1], '/')+1:]
	id, err := strconv.ParseUint(base[:strings.IndexByte(base, '-')], 16, 64)
	require.NoError(t, err)
	cli, _ := client()
	_, err = cli.Revoke(ctx, clientv3.LeaseID(id))
	require.NoError(t, err)
	require.NoError(t, l.Release())

	select {
	case l := <-got:
		require.NotNil(t, l)
		h, err := w.Holder(ctx)
		require.NoError(t, err)
		assert.Equal(t, l.Token(), h.Token, "granted a lock whose key is gone")
		assert.Greater(t, l.Token(), uint64(0))
		select {
		case <-l.Lost():
			t.Fatal("granted on a lost session")
		default:
		}
		require.NoError(t, wb.Put(ctx, l, prefix+"data", "x"))
		require.NoError(t, l.Release())
	case <-time.After(long):
		t.Fatal("the waiter never got the lock")
	}
}

// TestCloseLosesLocks: Close revokes the session: the lease is lost,
// its fenced writes and Release fail, and the next holder sees it as
// abandoned.
func TestCloseLosesLocks(t *testing.T) {
	b, prefix := newBackend(t)
	a := coordinator(t, b, "close")
	ctx := context.Background()
	l, err := a.Acquire(ctx)
	require.NoError(t, err)
	select {
	case <-l.Lost():
		t.Fatal("Lost closed while held")
	default:
	}
	require.NoError(t, b.Close())
	select {
	case <-l.Lost():
	case <-time.After(long):
		t.Fatal("Lost not closed after Close")
	}
	assert.ErrorIs(t, b.Put(ctx, l, prefix+"data", "x"), lock.ErrFenced)
	assert.ErrorIs(t, l.SetPurpose("x"), etcdlock.ErrLost)
	assert.ErrorIs(t, l.Release(), etcdlock.ErrLost)
	_, err = a.TryAcquire(ctx)
	assert.ErrorIs(t, err, etcdlock.ErrClosed)

	o := coordinator(t, newBackendAt(t, prefix), "close")
	l2, err := o.TryAcquire(ctx)
	require.NoError(t, err)
	assert.True(t, l2.Abandoned(), "the previous holder lost the lock without releasing it")
	require.NoError(t, l2.Release())
}

// TestFenced: fenced writes succeed while held and are refused after
// Release, and for a lease of another backend.
func TestFenced(t *testing.T) {
	b, prefix := newBackend(t)
	other := newBackendAt(t, prefix)
	c := coordinator(t, b, "fenced")
	ctx := context.Background()
	l, err := c.Acquire(ctx)
	require.NoError(t, err)
	require.NoError(t, b.Put(ctx, l, prefix+"data", "1"))
	assert.ErrorIs(t, other.Put(ctx, l, prefix+"data", "2"), lock.ErrFenced)
	assert.ErrorIs(t, b.Put(ctx, nil, prefix+"data", "2"), lock.ErrFenced)
	require.NoError(t, l.Release())
	err = b.Put(ctx, l, prefix+"data", "3")
	assert.ErrorIs(t, err, lock.ErrFenced)
	assert.False(t, errors.Is(err, etcdlock.ErrLost))
	cli, _ := client()
	resp, err := cli.Get(ctx, prefix+"data")
	require.NoError(t, err)
	assert.Equal(t, "1", string(resp.Kvs[0].Value))
}

// TestGrantedOnEndedSession (etcd issue 11456): a lock whose granting
// transaction succeeded just as its session ended is not granted on the
// dead session: its key is removed and the acquisition starts over
// with a new session, for Acquire and TryAcquire alike.
func TestGrantedOnEndedSession(t *testing.T) {
	b, prefix := newBackend(t)
	c := coordinator(t, b, "ended")
	ctx := context.Background()
	for _, try := range []bool{false, true} {
		calls := 0
		restore := etcdlock.OnGranted(func(end func()) {
			calls++
			if calls == 1 {
				end()
			}
		})
		var l *lock.Lease
		var err error
		if try {
			l, err = c.TryAcquire(ctx)
		} else {
			l, err = c.Acquire(ctx)
		}
		restore()
		require.NoError(t, err)
		assert.Equal(t, 2, calls, "did not start over")
		select {
		case <-l.Lost():
			t.Fatal("granted on an ended session")
		default:
		}
		assert.Equal(t, []string{queueKeys(t, prefix, "ended")[0]}, queueKeys(t, prefix, "ended"),
			"the key of the ended session was left behind")
		h, err := c.Holder(ctx)
		require.NoError(t, err)
		assert.Equal(t, l.Token(), h.Token)
		require.NoError(t, b.Put(ctx, l, prefix+"data", "x"))
		require.NoError(t, l.Release())
		assert.Empty(t, queueKeys(t, prefix, "ended"))
	}
}

// TestFencedAfterSetPurpose: a lease whose purpose changed still
// passes Fenced.
func TestFencedAfterSetPurpose(t *testing.T) {
	b, prefix := newBackend(t)
	c := coordinator(t, b, "purpose")
	ctx := context.Background()
	l, err := c.Acquire(ctx)
	require.NoError(t, err)
	require.NoError(t, l.SetPurpose("something else"))
	require.NoError(t, b.Put(ctx, l, prefix+"data", "x"))
	require.NoError(t, l.Release())
}

// TestLostBeforeServerExpiry: when keep-alives go unanswered, Lost
// closes at the local deadline, before the server could expire the
// lease (grant request sent + TTL), and the backend then gives the
// lease up, so the lock becomes free.
func TestLostBeforeServerExpiry(t *testing.T) {
	restore := etcdlock.DropKeepAlives()
	defer restore()
	b, prefix := newBackend(t, etcdlock.WithTTL(2*time.Second))
	c := coordinator(t, b, "deadline")
	ctx := context.Background()
	start := time.Now()
	l, err := c.Acquire(ctx)
	require.NoError(t, err)
	select {
	case <-l.Lost():
		assert.Less(t, time.Since(start), 2*time.Second, "Lost closed after the server could have expired the lease")
	case <-time.After(long):
		t.Fatal("Lost not closed while keep-alives went unanswered")
	}
	restore()
	require.Eventually(t, func() bool { return len(queueKeys(t, prefix, "deadline")) == 0 },
		long, 10*time.Millisecond, "the lease was not given up")
	assert.ErrorIs(t, l.Release(), etcdlock.ErrLost)

	// The next acquisition gets a new session, which holds.
	l, err = c.Acquire(ctx)
	require.NoError(t, err)
	select {
	case <-l.Lost():
		t.Fatal("lost at once")
	case <-time.After(3 * time.Second):
	}
	require.NoError(t, l.Release())
}
