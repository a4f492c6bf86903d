package poll

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/agentlock/agentlock/lock"
)

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
	at       []time.Time // when each Acquire call tried
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

// times returns when each try was made.
func (b *fakeBackend) times() []time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]time.Time(nil), b.at...)
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
	b.at = append(b.at, time.Now())
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
