//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package main

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
	"golang.org/x/sys/unix"

	"github.com/agentlock/agentlock/lock"
)

const lockName = "bench"

// An impl is one way of taking the lock file DIR/bench.lock.
type impl interface {
	lock(ctx context.Context) error
	try() (bool, error)
	unlock() error
}

// raw is the flock(2) system call on a descriptor kept open: the
// baseline every ratio is taken against.
type raw struct{ fd int }

func newRaw(dir string) *raw {
	fd, err := unix.Open(filepath.Join(dir, lockName+".lock"), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o666)
	check(err)
	return &raw{fd}
}
func (r *raw) lock(ctx context.Context) error { return unix.Flock(r.fd, unix.LOCK_EX) }
func (r *raw) try() (bool, error) {
	err := unix.Flock(r.fd, unix.LOCK_EX|unix.LOCK_NB)
	if err == unix.EWOULDBLOCK {
		return false, nil
	}
	return err == nil, err
}
func (r *raw) unlock() error { return unix.Flock(r.fd, unix.LOCK_UN) }

// naive blocks in flock(2) in a goroutine and abandons it on cancel: the
// design that leaves a phantom hold (shown to prove the check works).
type naive struct{ raw }

func (n *naive) lock(ctx context.Context) error {
	done := make(chan error, 1)
	go func() {
		err := unix.Flock(n.fd, unix.LOCK_EX)
		if ctx.Err() != nil && err == nil {
			time.Sleep(20 * time.Millisecond) // the "owner" notices late
			unix.Flock(n.fd, unix.LOCK_UN)
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

// kinds names the implementations a figure compares; the first is the
// baseline of the ratios, the last is agentlock.
var (
	lockKinds   = []string{"raw", "gofrs", "agentlock"}
	cpuKinds    = []string{"raw", "gofrs-1ms", "agentlock"}
	cancelKinds = []string{"naive", "gofrs-10ms", "agentlock"}
)

func newImpl(kind, dir string) impl {
	switch kind {
	case "raw":
		return newRaw(dir)
	case "naive":
		return &naive{*newRaw(dir)}
	case "gofrs":
		return &gofrs{f: flock.New(filepath.Join(dir, lockName+".lock"))}
	case "gofrs-10ms":
		return &gofrs{f: flock.New(filepath.Join(dir, lockName+".lock")), retry: 10 * time.Millisecond}
	case "gofrs-1ms":
		return &gofrs{f: flock.New(filepath.Join(dir, lockName+".lock")), retry: time.Millisecond}
	case "agentlock":
		c, err := lock.New(lockName, lock.WithDir(dir), lock.WithPurpose("benchmarking"))
		check(err)
		return &agent{c: c}
	}
	panic("unknown impl " + kind)
}
