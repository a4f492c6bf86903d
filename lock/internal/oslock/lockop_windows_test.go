package oslock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/windows"

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

// heldByOtherHandle opens the lock file name in dir twice and locks it
// through the first handle; the second contends with it.
func heldByOtherHandle(t *testing.T, name string) (holder, contender *fileLockPair) {
	t.Helper()
	p := filepath.Join(proctest.TempDir(t), name)
	a, err := openFile(p, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := openFile(p, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	if err := tryLockFile(a); err != nil {
		t.Fatal(err)
	}
	return &fileLockPair{a}, &fileLockPair{b}
}

type fileLockPair struct{ f *os.File }

// TestLockRequestPinsThread: from LockFileEx until the request is done,
// the goroutine that issued it stays on the issuing thread, so the
// runtime cannot end that thread under the pending request.
func TestLockRequestPinsThread(t *testing.T) {
	holder, contender := heldByOtherHandle(t, "pin.lock")
	defer unlockHandle(windows.Handle(holder.f.Fd()))
	stop := make(chan struct{})
	defer close(stop)
	go churnThreads(stop)

	type result struct {
		moves int
		err   error
	}
	res := make(chan result, 1)
	go func() {
		op, err := startLockHandle(windows.Handle(contender.f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK)
		if op == nil {
			res <- result{err: err}
			return
		}
		defer op.done()
		if err != windows.ERROR_IO_PENDING {
			res <- result{err: errors.New("the request did not pend: " + errString(err))}
			return
		}
		tid := windows.GetCurrentThreadId()
		moves := 0
		for range 50 {
			time.Sleep(time.Millisecond)
			runtime.Gosched()
			if windows.GetCurrentThreadId() != tid {
				moves++
			}
		}
		if underWine() {
			// Wine completes neither the request nor its cancellation:
			// report, and leave this goroutine blocked in withdraw (it
			// must not recycle an OVERLAPPED the request still owns).
			res <- result{moves: moves}
			op.withdraw()
			return
		}
		res <- result{moves, op.withdraw()}
	}()
	select {
	case r := <-res:
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.moves != 0 {
			t.Errorf("the goroutine left the issuing thread %d times while its request was pending", r.moves)
		}
	case <-time.After(time.Minute):
		t.Fatal("the pending request was not withdrawn within a minute")
	}
}

func errString(err error) string {
	if err == nil {
		return "granted"
	}
	return err.Error()
}

// TestPendingRequestHonoursContext: a pending request (what a
// non-blocking attempt on an unresponsive network share becomes) is
// withdrawn when its context ends, and leaves nothing locked. Wine
// completes neither the request nor its cancellation.
func TestPendingRequestHonoursContext(t *testing.T) {
	skipOnWine(t, "Wine completes neither overlapped LockFileEx waits nor their cancellation")
	holder, contender := heldByOtherHandle(t, "ctx.lock")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	op, err := startLockHandle(windows.Handle(contender.f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK)
	if op == nil {
		t.Fatal(err)
	}
	if err != windows.ERROR_IO_PENDING {
		op.done()
		t.Fatalf("the request did not pend: %s", errString(err))
	}
	cev, stop, err := cancelEvent(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = op.wait(ctx, cev)
	stop()
	op.done()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait = %v, want the context's error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the wait returned %v after its context ended", d)
	}
	// Nothing is left locked through the contender's handle.
	if err := unlockHandle(windows.Handle(holder.f.Fd())); err != nil {
		t.Fatal(err)
	}
	if err := tryLockFile(contender.f); err != nil {
		t.Fatalf("after the withdrawn request, the lock cannot be taken: %v", err)
	}
	unlockFile(contender.f)
}

// TestCachedEventsAreNotSet: the events that lock requests borrow from
// the cache go back unset, whether the request was granted at once or
// failed at once (a busy lock: not reset, since never set). A set event
// would make the next pending request look complete before it is.
func TestCachedEventsAreNotSet(t *testing.T) {
	p := filepath.Join(proctest.TempDir(t), "events.lock")
	holder, err := openFile(p, true)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	other, err := openFile(p, true)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	check := func(what string) {
		t.Helper()
		var got []windows.Handle
		for len(got) < cap(events) {
			select {
			case e := <-events:
				got = append(got, e)
				continue
			default:
			}
			break
		}
		if len(got) == 0 {
			t.Fatalf("%s: no event in the cache", what)
		}
		for _, e := range got {
			if r, err := windows.WaitForSingleObject(e, 0); r != uint32(windows.WAIT_TIMEOUT) {
				t.Errorf("%s: a cached event is set (%d, %v)", what, r, err)
			}
			events <- e
		}
	}
	if err := tryLockFile(holder); err != nil {
		t.Fatal(err)
	}
	check("granted at once")
	for i := 0; i < 3; i++ {
		if err := tryLockFile(other); !errors.Is(err, errWouldBlock) {
			t.Fatalf("try on a held lock = %v, want %v", err, errWouldBlock)
		}
	}
	check("failed at once")
	unlockFile(holder)
}
