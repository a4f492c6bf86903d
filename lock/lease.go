package lock

import (
	"errors"
	"fmt"
	"sync"
)

// ErrFenced reports a write to a resource fenced by lease tokens that
// was refused because its lease may no longer write: it was released or
// its lock was lost (Lease.Lost), a lease with a higher token has
// written since, or it belongs to another lock. Nothing was written.
// Package guarded and etcdlock's fenced writes return it.
var ErrFenced = errors.New("fenced")

// A Lease is one holding of the lock. It is safe for concurrent use.
// Release it when done: the lock stays held until Release is called,
// the process exits, or the Lease becomes unreachable.
//
// A Lease that the program drops without releasing (the result of a
// TryAcquire thrown away, say) is released by the garbage collector,
// as an os.File is closed: at some collection after it became
// unreachable, which may be much later or, if the program allocates
// little, never before it exits. That is a safety net against a lock
// held by mistake until the process ends, not a way to release: keep
// the Lease while the lock must be held, and call Release. A program
// that holds the lock for its whole life (to run as a single instance,
// say) keeps the Lease reachable, in a package-level variable or with
// runtime.KeepAlive(lease) where it ends, or the lock may be released
// under it.
type Lease struct {
	name string
	g    Grant

	mu       sync.Mutex
	released bool

	// Guarding against a drop (see dropped.go), under guarding.mu.
	prev, next *Lease
	listed     bool
}

// Token returns the lease's fencing token. Tokens of one lock strictly
// increase with every acquisition, across processes and restarts, so a
// resource that remembers the highest token it has seen can refuse a
// write from a holder that has since been superseded (see package guarded).
//
// With the file and named-mutex backends a token is the larger of the
// previous token plus one and the wall clock in nanoseconds, so tokens
// recover upward if the stored one is lost (its holder file deleted or
// damaged), unless the clock was set back further than the time since.
// A process also remembers the highest token it has issued or seen. A
// stored token more than 24 hours ahead of the clock is not trusted:
// the acquisition fails with an error matching ErrCorrupt that says how
// to recover, rather than issue a token that may repeat.
func (l *Lease) Token() uint64 { return l.g.Holder().Token }

// Holder returns the record this lease published.
func (l *Lease) Holder() Holder { return l.g.Holder() }

// Abandoned reports whether the previous holder died while holding the
// lock. Data the lock guards may then be half-written, and the new
// holder should check or repair it before trusting it.
//
// Only the next lease of the lock sees it, whichever program takes it.
// If a program that does not repair (a poller taking the lock for a
// moment) gets there first, the program that would repair sees false.
// So a program that repairs should decide from the state of the data,
// which it can check every time it holds the lock, and treat Abandoned
// as a hint (for a message, or a deeper check); and a program that only
// watches should not take the lock at all (Coordinator.Holder, or a
// watch-only poll.Poller).
func (l *Lease) Abandoned() bool { return l.g.Abandoned() }

// SetPurpose changes the purpose this lease advertises, for example
// from "querying" to "installing Office 97". Holder sees the change at
// once. It returns an error matching ErrReleased after Release.
func (l *Lease) SetPurpose(purpose string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return fmt.Errorf("lock %s: SetPurpose: %w", l.name, ErrReleased)
	}
	if err := WithPurpose(purpose).apply(&config{}); err != nil {
		return fmt.Errorf("lock %s: SetPurpose: %w: %v", l.name, ErrInvalidOption, err)
	}
	return l.g.SetPurpose(purpose)
}

// Lost returns a channel that is closed if the lock is lost while the
// lease is held. A nil channel (never closed) means the backend cannot
// tell.
//
// The file backend loses a held lock only if its lock file is removed
// or replaced (a cleaner or an administrator emptied the lock
// directory): a process that opens the path then locks another file.
// On Linux, macOS and the BSDs it closes Lost within milliseconds of
// that (an inotify or kqueue watch on the held file), and the lease's
// SetPurpose and Release return errors matching ErrLost; on Windows,
// where a held lock file cannot be removed or renamed, Lost is nil.
// The named-mutex backend is the file backend on Unix systems, with the
// same Lost; on Windows it returns nil: a held mutex is kept until
// Release or the end of the process.
//
// A distributed backend closes it when its session ends (see module
// github.com/agentlock/agentlock/lock/etcdlock). Lost is a signal, not a
// guarantee: a holder may be paused between checking it and writing, so
// data the lock guards must also be fenced by the lease's token.
func (l *Lease) Lost() <-chan struct{} { return l.g.Lost() }

// Release gives up the lock. A second call returns an error matching
// ErrReleased; it never panics.
func (l *Lease) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return fmt.Errorf("lock %s: Release: %w", l.name, ErrReleased)
	}
	l.released = true
	// After the release (another process may take the lock meanwhile),
	// even if it panics: a Grant is released at most once.
	defer unguard(l)
	return l.g.Release()
}

// Name returns the name of the lease's lock.
func (l *Lease) Name() string { return l.name }

// Raw runs f with the lease's Grant, the value its Backend returned,
// while the lease is held: Release waits until f returns, and after
// Release Raw returns an error matching ErrReleased without calling f.
// Otherwise it returns what f returns. f must not call the lease's
// Release or SetPurpose, which would deadlock.
//
// It serves two kinds of code, as database/sql's Conn.Raw serves
// drivers. A resource that fences writes by the lease's token commits
// a write inside f, so that the write either completes before Release
// returns or is refused (see package guarded). A backend reaches its
// own Grant type through it, to give its users fenced operations of its
// own (see etcdlock's Fenced).
func (l *Lease) Raw(f func(g Grant) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return fmt.Errorf("lock %s: %w", l.name, ErrReleased)
	}
	return f(l.g)
}
