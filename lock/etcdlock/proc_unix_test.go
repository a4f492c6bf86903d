//go:build unix

package etcdlock_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/lock"
)

// TestPausedHolder: a holder stopped (SIGSTOP) past its TTL loses the
// lock to a waiter; when it resumes, its Lease.Lost is closed, its
// fenced write is refused, and its Release reports the loss.
func TestPausedHolder(t *testing.T) {
	b, prefix := newBackend(t)
	key := prefix + "data"
	ch, tok := holdChild(t, prefix, "1s", "paused", key)
	ch.Send("put 1")
	ch.Expect("ok", long)

	pid := ch.PID()
	require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	stopped := time.Now()
	resumed := false
	defer func() {
		if !resumed {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}()

	c, err := lock.New("paused", lock.WithBackend(b))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	l, err := c.Acquire(ctx)
	require.NoError(t, err)
	t.Logf("holder stopped (TTL 1s): waiter got the lock after %v", time.Since(stopped))
	assert.True(t, l.Abandoned())
	assert.Greater(t, l.Token(), tok)
	require.NoError(t, b.Put(ctx, l, key, "2"))

	require.NoError(t, syscall.Kill(pid, syscall.SIGCONT))
	resumed = true
	ch.Send("lost 10s")
	ch.Expect("lost", long)
	ch.Send("put 3")
	ch.Expect("fenced", long)
	ch.Send("release")
	ch.Expect("lost", long)

	cli, err := client()
	require.NoError(t, err)
	resp, err := cli.Get(ctx, key)
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	assert.Equal(t, "2", string(resp.Kvs[0].Value), "the stale holder's write went through")
	h, err := c.Holder(ctx)
	require.NoError(t, err)
	assert.Equal(t, l.Token(), h.Token, "the stale holder's Release touched the new holder's key")
	require.NoError(t, l.Release())
}
