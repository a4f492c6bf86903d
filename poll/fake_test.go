package poll

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/agentlock/agentlock/lock"
)

// fakeClock is a manual clock. Timers fire only when Advance moves the
// clock past their deadline. Every NewTimer and Reset is reported on
// sets, so a test can wait until the code under test is waiting.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	sets   chan time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), sets: make(chan time.Duration, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) timer {
	t := &fakeTimer{clk: c, c: make(chan time.Time, 1)}
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	t.Reset(d)
	return t
}

// Advance moves the clock on by d and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		if t.active && !t.when.After(c.now) {
			t.active = false
			t.c <- c.now
		}
	}
}

// waitSet waits for the next NewTimer or Reset and returns its duration.
func (c *fakeClock) waitSet(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.sets:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("fakeClock: no timer set within 10s")
		return 0
	}
}

// step waits for the code under test to set its timer and fires it.
func (c *fakeClock) step(t *testing.T) time.Duration {
	t.Helper()
	d := c.waitSet(t)
	c.Advance(d)
	return d
}

type fakeTimer struct {
	clk    *fakeClock
	c      chan time.Time
	when   time.Time
	active bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Reset(d time.Duration) {
	t.clk.mu.Lock()
	select {
	case <-t.c:
	default:
	}
	t.when = t.clk.now.Add(d)
	t.active = true
	if d <= 0 {
		t.active = false
		t.c <- t.clk.now
	}
	t.clk.mu.Unlock()
	t.clk.sets <- d
}

func (t *fakeTimer) Stop() {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	t.active = false
	select {
	case <-t.c:
	default:
	}
}

// fakeBackend is a lock.Backend whose state the test sets: busy with a
// holder, failing with an error, or free.
type fakeBackend struct {
	mu       sync.Mutex
	holder   *lock.Holder // busy if not nil
	err      error        // returned by Acquire if not nil
	tries    int          // Acquire calls
	grants   int          // successful Acquire calls
	released int          // Release calls
	token    uint64
}

func (b *fakeBackend) set(h *lock.Holder, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.holder, b.err = h, err
}

func (b *fakeBackend) counts() (tries, grants, released int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tries, b.grants, b.released
}

func (b *fakeBackend) Acquire(ctx context.Context, req lock.Request) (lock.Grant, error) {
	for {
		g, err := b.try(req)
		if !req.Wait || !errors.Is(err, lock.ErrBusy) {
			return g, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

func (b *fakeBackend) try(req lock.Request) (lock.Grant, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tries++
	switch {
	case b.err != nil:
		return nil, b.err
	case b.holder != nil:
		return nil, &lock.BusyError{Name: req.Name, Holder: *b.holder}
	}
	b.grants++
	b.token++
	h := req.Holder
	h.Token = b.token
	b.holder = &h
	return &fakeGrant{b: b, h: h}, nil
}

func (b *fakeBackend) Holder(ctx context.Context, name string) (lock.Holder, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.holder == nil {
		return lock.Holder{}, lock.ErrNotHeld
	}
	return *b.holder, nil
}

type fakeGrant struct {
	b *fakeBackend
	h lock.Holder
}

func (g *fakeGrant) Holder() lock.Holder             { return g.h }
func (g *fakeGrant) Abandoned() bool                 { return false }
func (g *fakeGrant) SetPurpose(purpose string) error { g.h.Purpose = purpose; return nil }
func (g *fakeGrant) Lost() <-chan struct{}           { return nil }
func (g *fakeGrant) Release() error {
	g.b.mu.Lock()
	defer g.b.mu.Unlock()
	g.b.released++
	g.b.holder = nil
	return nil
}
