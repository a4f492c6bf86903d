package lock

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

// churnThreads makes the runtime end threads until stop is closed: a
// goroutine that exits while locked to its thread takes the thread
// with it. A pending LockFileEx whose thread ends is cancelled.
func churnThreads(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		done := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			close(done)
		}()
		<-done
		time.Sleep(100 * time.Microsecond)
	}
}

// locktestRoleHold is locktest.RoleHold, registered by this test binary's
// TestMain; this file is in package lock, which locktest imports, so it
// cannot name the constant.
const locktestRoleHold = "locktest-hold"

// TestPendingWaitSurvivesThreadExits: a wait for a lock held by another
// process gets the lock when it is released, while the runtime ends
// threads all along. Wine does not complete overlapped LockFileEx
// waits (see waitLockFile), so this runs on Windows only.
func TestPendingWaitSurvivesThreadExits(t *testing.T) {
	skipOnWine(t, "Wine does not complete overlapped LockFileEx waits")
	dir := proctest.TempDir(t)
	ch := proctest.Start(t, locktestRoleHold, dir, "threads", "holding")
	ch.Expect("waiting", time.Minute)
	ch.Expect("locked", time.Minute)
	c, err := New("threads", WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go churnThreads(stop)
	got := make(chan error, 1)
	go func() {
		l, err := c.Acquire(context.Background())
		if err == nil {
			err = l.Release()
		}
		got <- err
	}()
	time.Sleep(500 * time.Millisecond) // the wait stays pending while threads end: the time is the test
	ch.Send("release")
	ch.Expect("released", time.Minute)
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("Acquire after the holder released: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Acquire did not return within a minute of the release")
	}
}
