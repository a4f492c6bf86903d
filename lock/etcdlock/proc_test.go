package etcdlock_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

const long = 60 * time.Second

// holdChild starts a child that holds the lock name with session TTL
// ttl and returns it with its token and abandoned flag.
func holdChild(t *testing.T, prefix, ttl, name, key string) (*proctest.Child, uint64) {
	t.Helper()
	ch := proctest.Start(t, roleNameHold, prefix, ttl, name, key)
	f := strings.Fields(ch.Expect("locked", long))
	tok, err := strconv.ParseUint(f[1], 10, 64)
	require.NoError(t, err)
	return ch, tok
}

// TestCounterProcesses: several processes increment a counter kept in
// etcd under the lock, with fenced writes; the count ends exact.
func TestCounterProcesses(t *testing.T) {
	const procs, n = 4, 100
	_, prefix := newBackend(t)
	key := prefix + "counter"
	var children []*proctest.Child
	for i := 0; i < procs; i++ {
		children = append(children, proctest.Start(t, roleNameCount, prefix, "3s", "count", key, strconv.Itoa(n)))
	}
	for _, ch := range children {
		ch.Expect("done", long)
		require.NoError(t, ch.Wait(long))
	}
	cli, err := client()
	require.NoError(t, err)
	resp, err := cli.Get(context.Background(), key)
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	assert.Equal(t, strconv.Itoa(procs*n), string(resp.Kvs[0].Value))
}

// TestKilledHolder: kill -9 of a holder frees the lock after the
// session TTL, and the waiter's lease says Abandoned.
func TestKilledHolder(t *testing.T) {
	b, prefix := newBackend(t)
	ch, tok := holdChild(t, prefix, "1s", "killed", prefix+"data")
	c, err := lock.New("killed", lock.WithBackend(b))
	require.NoError(t, err)

	got := acquireAsync(t, context.Background(), c)
	require.Eventually(t, func() bool { return len(queueKeys(t, prefix, "killed")) == 2 }, long, time.Millisecond,
		"the waiter never joined the queue behind the holder")
	start := time.Now()
	ch.Kill()
	select {
	case l := <-got:
		d := time.Since(start)
		t.Logf("kill -9 of the holder (TTL 1s): waiter got the lock after %v", d)
		require.NotNil(t, l)
		assert.True(t, l.Abandoned(), "the previous holder died holding the lock")
		assert.Greater(t, l.Token(), tok)
		assert.Less(t, d, 10*time.Second)
		require.NoError(t, l.Release())
	case <-time.After(long):
		t.Fatal("the lock was not freed after its holder was killed")
	}
	l, err := c.TryAcquire(context.Background())
	require.NoError(t, err)
	assert.False(t, l.Abandoned(), "released cleanly, yet Abandoned")
	require.NoError(t, l.Release())
}
