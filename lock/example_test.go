package lock_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/agentlock/agentlock/lock"
)

// The installer validates its logon server first and locks second, then
// says what it is doing; the poller asks who holds the lock.
func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	serverOK := func(ctx context.Context) error { return nil } // e.g. a logon.HTTP check
	installer, err := lock.New("pcm-install", lock.WithDir(dir),
		lock.WithPurpose("querying"), lock.WithPrecondition(serverOK))
	if err != nil {
		fmt.Println(err)
		return
	}
	lease, err := installer.Acquire(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	lease.SetPurpose("installing Office 97")

	// The poller asks who holds the lock; Holder never takes it.
	poller, _ := lock.New("pcm-install", lock.WithDir(dir))
	if h, err := poller.Holder(ctx); err == nil {
		fmt.Println("busy:", h.Purpose, "by this process:", h.PID == os.Getpid())
	}

	// TryAcquire takes the lock when it is free, so its lease must be
	// released; when the lock is busy, the error says by whom.
	other, err := poller.TryAcquire(ctx)
	var busy *lock.BusyError
	if errors.As(err, &busy) {
		fmt.Println("TryAcquire: busy:", busy.Holder.Purpose)
	} else if err == nil {
		other.Release()
	}

	lease.Release()
	_, err = poller.Holder(ctx)
	fmt.Println("after release:", errors.Is(err, lock.ErrNotHeld))
	// Output:
	// busy: installing Office 97 by this process: true
	// TryAcquire: busy: installing Office 97
	// after release: true
}

// A failed precondition means nothing was locked, and the error says why.
func ExampleWithPrecondition() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	down := errors.New("logon server 10.0.0.5:445: connection refused")
	c, _ := lock.New("pcm-install", lock.WithDir(dir),
		lock.WithPrecondition(func(context.Context) error { return down }))
	_, err := c.Acquire(context.Background())
	fmt.Println(errors.Is(err, lock.ErrPrecondition), errors.Is(err, down))
	fmt.Println(err)
	// Output:
	// true true
	// lock pcm-install: precondition failed before locking: logon server 10.0.0.5:445: connection refused
}

// Names are checked before anything touches the file system.
func ExampleNew_invalidName() {
	_, err := lock.New("Install")
	fmt.Println(errors.Is(err, lock.ErrInvalidName))
	fmt.Println(err)
	// Output:
	// true
	// lock: invalid name "Install": upper-case letters are not allowed (names must mean the same lock on case-insensitive file systems)
}
