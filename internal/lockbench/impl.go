//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd || windows

package main

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"

	"github.com/agentlock/agentlock/lock"
)

const lockName = "bench"

// An impl is one way of taking a lock; each kind of impl has its own
// lock directory DIR (see newImpl in the per-system files).
type impl interface {
	lock(ctx context.Context) error
	try() (bool, error)
	unlock() error
}

// A suite is one table: the kinds of impl that each figure compares,
// in the order of the table's columns. The first kind is the baseline
// of every ratio, the last is agentlock; between them there is at most
// one more (gofrs/flock).
type suite struct {
	title   string   // printed above the table, if not empty
	columns []string // column headings, one per kind
	lock    []string // uncontended, busy, hand-off, throughput
	cpu     []string // waiter CPU
	cancel  []string // cancel

	// omit names the kinds not measured in a figure ("figure/kind"),
	// and why.
	omit map[string]string
}

// labels go before a value in the table, by "figure/kind"; notes go
// after a ratio ("busy/kind").
var labels = map[string]string{
	"handoff/gofrs":     "blocking Lock: ",
	"cpu/gofrs-1ms":     "1 ms poll: ",
	"cancel/gofrs-10ms": "10 ms poll: ",
	"busy/gofrs":        "gofrs reads no holder",
}

// naive blocks in the raw lock in a goroutine and abandons it on
// cancel: the design that leaves a phantom hold (shown to prove the
// check works).
type naive struct{ impl }

func (n naive) lock(ctx context.Context) error {
	done := make(chan error, 1)
	go func() {
		err := n.impl.lock(context.Background())
		if ctx.Err() != nil && err == nil {
			time.Sleep(20 * time.Millisecond) // the "owner" notices late
			n.impl.unlock()
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

type gofrs struct {
	f     *flock.Flock
	retry time.Duration // 0: blocking Lock
}

func (g *gofrs) lock(ctx context.Context) error {
	if g.retry == 0 {
		return g.f.Lock()
	}
	ok, err := g.f.TryLockContext(ctx, g.retry)
	if err == nil && !ok {
		err = errors.New("not locked")
	}
	return err
}
func (g *gofrs) try() (bool, error) { return g.f.TryLock() }
func (g *gofrs) unlock() error      { return g.f.Unlock() }

type agent struct {
	c *lock.Coordinator
	l *lock.Lease
}

func newAgent(name string, opts ...lock.Option) *agent {
	c, err := lock.New(name, append(opts, lock.WithPurpose("benchmarking"))...)
	check(err)
	return &agent{c: c}
}

func (a *agent) lock(ctx context.Context) (err error) {
	a.l, err = a.c.Acquire(ctx)
	return err
}
func (a *agent) try() (bool, error) {
	l, err := a.c.TryAcquire(context.Background())
	var be *lock.BusyError
	if errors.As(err, &be) {
		if be.Holder.PID == 0 {
			return false, errors.New("busy without a holder record")
		}
		return false, nil
	}
	a.l = l
	return err == nil, err
}
func (a *agent) unlock() error { return a.l.Release() }

// newFileImpl returns the implementations of kind that every system
// has, on the file lock in dir, with raw the system's own lock call; ok
// is false for another kind.
func newFileImpl(kind, dir string, raw func(dir string) impl) (im impl, ok bool) {
	path := filepath.Join(dir, lockName+".lock")
	switch kind {
	case "raw":
		return raw(dir), true
	case "naive":
		return naive{raw(dir)}, true
	case "gofrs":
		return &gofrs{f: flock.New(path)}, true
	case "gofrs-10ms":
		return &gofrs{f: flock.New(path), retry: 10 * time.Millisecond}, true
	case "gofrs-1ms":
		return &gofrs{f: flock.New(path), retry: time.Millisecond}, true
	case "agentlock":
		return newAgent(lockName, lock.WithDir(dir)), true
	}
	return nil, false
}
