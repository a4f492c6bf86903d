package logon_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
	"github.com/agentlock/agentlock/logon"
)

// A Check, and the Check methods of a List and a Validation, plug
// straight into lock.WithPrecondition without an adapter: these lines fail
// to compile otherwise. Only this test imports lock; package logon does
// not.
var (
	_ = lock.WithPrecondition(logon.Check(nil))
	_ = lock.WithPrecondition((*logon.Validation)(nil).Check)
	_ = lock.WithPrecondition((*logon.List)(nil).Check)
)

// A misconfigured check is an error from its constructor, before a lock
// exists; a check that builds is a precondition whose failure locks
// nothing and names the server.
func TestMisconfiguredCheckFailsBeforeLocking(t *testing.T) {
	bad, err := logon.TCP("10.0.0.5", logon.WithTimeout(-1))
	require.Nil(t, bad)
	require.ErrorIs(t, err, logon.ErrConfig)
	var ce *logon.ConfigError
	require.True(t, errors.As(err, &ce))
	require.Equal(t, "logon.TCP: addr: address 10.0.0.5: missing port in address", ce.Error())

	check, err := logon.TCP("logon1.invalid:445")
	require.NoError(t, err)
	c, err := lock.New("logon-precondition", lock.WithDir(proctest.TempDir(t)), lock.WithPrecondition(check))
	require.NoError(t, err)
	_, err = c.TryAcquire(context.Background())
	require.ErrorIs(t, err, lock.ErrPrecondition)
	require.ErrorIs(t, err, logon.KindDNS)
	_, err = c.Holder(context.Background())
	require.ErrorIs(t, err, lock.ErrNotHeld)
}

// One Validation given to lock.New serves every acquisition and still
// fails over: after server A passed and died, the next acquisition tries
// the list again and gets B (the re-check after locking probes the
// server chosen for that acquisition). A re-check that fails makes the
// List forget its cached success, so the acquisition after it probes
// again instead of trusting the cache.
func TestSharedValidationFailsOver(t *testing.T) {
	var aDown, bCalls atomic.Bool
	a := func(context.Context) error {
		if aDown.Load() {
			return errors.New("down")
		}
		return nil
	}
	b := func(context.Context) error { bCalls.Store(true); return nil }
	for _, ttl := range []time.Duration{0, time.Hour} {
		aDown.Store(false)
		bCalls.Store(false)
		list, err := logon.NewList([]logon.Server{{Name: "a", Check: a}, {Name: "b", Check: b}}, logon.WithSuccessTTL(ttl))
		require.NoError(t, err)
		v := list.Validation()
		c, err := lock.New("logon-shared", lock.WithDir(proctest.TempDir(t)),
			lock.WithPrecondition(v.Check), lock.WithRecheck())
		require.NoError(t, err)

		l, err := c.Acquire(context.Background())
		require.NoError(t, err)
		srv, _ := v.Server()
		assert.Equal(t, "a", srv.Name)
		require.NoError(t, l.Release())

		aDown.Store(true)
		l, err = c.Acquire(context.Background())
		if ttl > 0 {
			// The cache still says a; the re-check after locking asks a,
			// which fails, and the lock is released at once.
			require.ErrorIs(t, err, lock.ErrPrecondition, "ttl %v", ttl)
			l, err = c.Acquire(context.Background())
		}
		require.NoError(t, err, "ttl %v: b was never tried", ttl)
		srv, _ = v.Server()
		assert.Equal(t, "b", srv.Name, "ttl %v", ttl)
		assert.True(t, bCalls.Load())
		require.NoError(t, l.Release())
	}
}

// With one server, the error of a failed precondition names it once:
// each layer adds only what the one below did not say.
func TestPreconditionErrorNamesServerOnce(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers
	}))
	defer srv.Close()
	check, err := logon.HTTP(srv.URL+"/health", logon.WithTimeout(200*time.Millisecond))
	require.NoError(t, err)
	list, err := logon.NewList([]logon.Server{{Name: srv.URL, Check: check}}, logon.WithFailureTTL(0))
	require.NoError(t, err)
	v := list.Validation()
	c, err := lock.New("app", lock.WithDir(proctest.TempDir(t)))
	require.NoError(t, err)
	_, err = c.Acquire(context.Background(), lock.WithPrecondition(v.Check))
	require.ErrorIs(t, err, lock.ErrPrecondition)
	require.ErrorIs(t, err, logon.KindTimeout)
	assert.Equal(t, "lock app: precondition failed before locking: logon server "+srv.URL+"/health: no answer within 200ms", err.Error())
	assert.Equal(t, 1, strings.Count(err.Error(), strings.TrimPrefix(srv.URL, "http://")), err.Error())
}
