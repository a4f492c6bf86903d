package lock

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/agentlock/agentlock/internal/record"
	"github.com/agentlock/agentlock/lock/internal/oslock"
)

// newKernelMutexBackend returns the backend on named kernel mutexes
// (Windows), with the holder files in c.dir.
func newKernelMutexBackend(c *mutexConfig) (Backend, error) {
	b := &mutexBackend{dir: c.dir, scope: c.scope}
	if c.scope == ScopeLocal {
		s, err := oslock.SessionID()
		if err != nil {
			return nil, &MutexError{Object: `Local\agentlock.*`, Err: fmt.Errorf("finding the session of this process: %w", err)}
		}
		b.local = s
		// Session 0 (services, scheduled tasks, SSH sessions) has no
		// namespace of its own: its Local\ is the global namespace, so
		// its "local" mutex is the global one, and it must publish to
		// the global holder file, or Holder would miss its leases and
		// tokens would follow two sequences.
		if s == 0 {
			b.scope = ScopeGlobal
		}
	}
	return b, nil
}

type mutexBackend struct {
	dir   string
	scope MutexScope
	local uint64 // session id for ScopeLocal
}

// namedMutex is the per-process state of one mutex. It lives for the
// life of the process (see mutexes).
type namedMutex struct {
	object string
	hf     holderFile

	// sem is the in-process semaphore: a send takes it.
	sem chan struct{}

	mu sync.Mutex    // guards h while opening
	h  *oslock.Mutex // nil until opened; never closed
}

var mutexes sync.Map // object name and holder path → *namedMutex

func (b *mutexBackend) mutex(name string) *namedMutex {
	obj := mutexObjectName(b.scope, name)
	hp := filepath.Join(b.dir, mutexFileName(b.scope, b.local, name)+".holder")
	key := obj + "\x00" + hp
	if v, ok := mutexes.Load(key); ok {
		return v.(*namedMutex)
	}
	v, _ := mutexes.LoadOrStore(key, &namedMutex{
		object: obj,
		hf:     holderFile{path: hp},
		sem:    make(chan struct{}, 1),
	})
	return v.(*namedMutex)
}

// open creates or opens the mutex if that has not been done yet (see
// oslock.OpenMutex for the checks of a mutex that already existed).
func (m *namedMutex) open() (*oslock.Mutex, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h != nil {
		return m.h, nil
	}
	h, err := oslock.OpenMutex(m.object)
	if err != nil {
		return nil, &MutexError{Object: m.object, Err: err}
	}
	m.h = h
	return h, nil
}

func (b *mutexBackend) Acquire(ctx context.Context, req Request) (Grant, error) {
	if err := validateName(req.Name); err != nil {
		return nil, err
	}
	m := b.mutex(req.Name)
	// As in the file backend, goroutines of one process take turns on
	// the semaphore before they touch the mutex.
	if err := takeTurn(ctx, m.sem, req.Name, req.Wait, &m.hf); err != nil {
		return nil, err
	}
	g, err := m.acquire(ctx, req)
	if err != nil {
		<-m.sem
		return nil, err
	}
	return g, nil
}

func (m *namedMutex) acquire(ctx context.Context, req Request) (*pageGrant, error) {
	h, err := m.open()
	if err != nil {
		return nil, err
	}
	page, err := m.hf.open()
	if err != nil {
		return nil, err
	}
	o, abandoned, err := h.Lock(ctx, req.Wait)
	if err == oslock.ErrMutexBusy {
		relock := func() bool {
			o, abandoned, err = h.Lock(ctx, false)
			return err != oslock.ErrMutexBusy
		}
		if e := m.hf.busyUnless(ctx, req.Name, relock); e != nil {
			return nil, e
		}
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, err
		}
		return nil, &MutexError{Object: m.object, Err: err}
	}
	hd, abandoned, err := publishAcquired(page, m.hf.path, req, abandoned)
	if err != nil {
		o.Unlock()
		return nil, err
	}
	unlock := func() error {
		err := o.Unlock()
		<-m.sem
		if err != nil {
			return &MutexError{Object: m.object, Err: err}
		}
		return nil
	}
	return &pageGrant{hf: &m.hf, page: page, holder: hd, abandoned: abandoned, unlock: unlockFunc(unlock)}, nil
}

// unlockFunc adapts a function to pageGrant's unlock.
type unlockFunc func() error

func (f unlockFunc) unlock() error { return f() }

func (b *mutexBackend) Holder(ctx context.Context, name string) (Holder, error) {
	if err := validateName(name); err != nil {
		return Holder{}, err
	}
	return b.mutex(name).hf.holder(ctx, name)
}

// publishAcquired publishes req.Holder on page right after the lock
// was taken: it sets Since and a token larger than the last one stored
// (see issueToken), and reports the acquisition as abandoned if the
// caller already knows it is (abandoned) or the previous record still
// says held (its holder never released) or cannot be read.
func publishAcquired(page *record.Page, path string, req Request, abandoned bool) (Holder, bool, error) {
	prevState, prevToken, perr := page.Peek()
	return publishAfter(page, path, req, abandoned, prevState, prevToken, perr, nil)
}
