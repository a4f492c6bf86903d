package lock_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/lock"
)

// recGrant is a Grant that counts its releases.
type recGrant struct{ released atomic.Int32 }

func (g *recGrant) Holder() lock.Holder     { return lock.Holder{Token: 1} }
func (g *recGrant) Abandoned() bool         { return false }
func (g *recGrant) SetPurpose(string) error { return nil }
func (g *recGrant) Release() error          { g.released.Add(1); return nil }
func (g *recGrant) Lost() <-chan struct{}   { return nil }

// oneGrant is a Backend that grants every lock with g.
type oneGrant struct{ g *recGrant }

func (b oneGrant) Acquire(context.Context, lock.Request) (lock.Grant, error) { return b.g, nil }

func (b oneGrant) Holder(context.Context, string) (lock.Holder, error) {
	return lock.Holder{}, lock.ErrNotHeld
}

// TestLeaseRaw: Raw hands f the backend's own Grant and returns f's
// error; Release waits for f; after Release, Raw refuses without
// calling f.
func TestLeaseRaw(t *testing.T) {
	g := &recGrant{}
	c, err := lock.New("raw", lock.WithBackend(oneGrant{g}))
	require.NoError(t, err)
	l, err := c.Acquire(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "raw", l.Name())

	errF := errors.New("from f")
	err = l.Raw(func(got lock.Grant) error {
		assert.Same(t, g, got, "not the backend's grant")
		return errF
	})
	assert.Same(t, errF, err)

	released := make(chan error, 1)
	err = l.Raw(func(lock.Grant) error {
		go func() { released <- l.Release() }()
		// A Release that did not wait would reach the grant now.
		time.Sleep(100 * time.Millisecond)
		assert.Zero(t, g.released.Load(), "Release went through while f ran")
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, <-released)
	assert.Equal(t, int32(1), g.released.Load())

	called := false
	err = l.Raw(func(lock.Grant) error { called = true; return nil })
	assert.ErrorIs(t, err, lock.ErrReleased)
	assert.False(t, called, "f called after Release")
}
