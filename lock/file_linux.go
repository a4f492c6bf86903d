package lock

import (
	"context"
	"errors"
	"math"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/agentlock/agentlock/internal/record"
)

// defaultDir is /run/lock: the directory the Filesystem Hierarchy
// Standard gives for lock files shared between programs, on a tmpfs
// (cleared at boot, never by a cleaner while running), root-owned and
// sticky, so that every user may create lock files there and none may
// remove another's.
func defaultDir() (string, error) {
	return "/run/lock", nil
}

// fallbackWait bounds each sleep in waitLockFile. Releases wake a
// sleeper through the futex and deaths through inotify, so this is only
// a safety net (a lost wake-up from a waiter killed just after it was
// woken, a file system without inotify). It is long because every sleep
// of more than 10 ms in a system call costs the Go runtime a hand-off of
// the sleeper's P, about 0.1 ms of CPU (measured; see BENCHMARKS.md).
const fallbackWait = 250 * time.Millisecond

// spinAttempts is how many quick attempts a wait makes before it sleeps
// (about 5 µs in all here).
const spinAttempts = 10

// deathWatchAfter is how long a wait goes before it watches for the
// holder's death (see waitLockFile): a holder that dies is noticed
// within this time in a short wait, within a millisecond or two in a
// longer one. Short waits skip the watch because it is not free: its
// goroutine, stopped when the wait ends, added about 15 µs to the
// hand-off (measured).
const deathWatchAfter = 10 * time.Millisecond

// waitLockFile blocks until f is locked or ctx is done.
//
// A blocking flock(2) cannot be cancelled: a goroutine left in it after
// ctx ends would later take the lock and drop it again, a phantom hold
// that other processes can observe. Instead every attempt here is
// non-blocking, and between attempts the goroutine sleeps on a futex
// in the shared holder page (a futex on a shared file mapping works
// across processes):
//
//   - before each attempt a sleeper reads the page's wake sequence and
//     sets its waiters flag; after a failed attempt it sleeps only if
//     the sequence is unchanged (FUTEX_WAIT compares), so a release in
//     between is never missed;
//   - a releaser that finds the flag set clears it, bumps the sequence
//     and wakes one sleeper (FUTEX_WAKE), about as directly as the
//     kernel wakes a blocked flock(2) and without a thundering herd;
//     the woken sleeper sets the flag again before its attempt, so the
//     next release wakes the next sleeper;
//   - a releaser skips the wake-up while the page's woken flag says a
//     woken sleeper has not yet made its attempt (it will, and sets the
//     waiters flag again first), so a holder that releases and retakes
//     the lock in a loop does not pay a system call per release; a
//     sleeper clears the woken flag before each attempt;
//   - a holder that dies cannot wake anyone, but its process closes the
//     lock file as it dies, which a per-process inotify watch on the
//     lock file turns into a wake-up of the sleepers (repeated for a few
//     milliseconds: the kernel reports the close just before it drops
//     the dead process's lock); the watch is set up once a wait has
//     lasted deathWatchAfter, so a death is noticed within milliseconds;
//   - before all this, a wait makes a few quick attempts (spinAttempts),
//     which is what keeps 8 processes contending for the lock as fast
//     as raw flock(2) (BENCHMARKS.md);
//   - cancellation bumps the sequence and wakes the sleepers (the others
//     go back to sleep), and the cancelled goroutine returns without
//     ever having blocked in flock(2).
func waitLockFile(ctx context.Context, f *os.File, page *record.Page) error {
	// A holder that releases and retakes the lock in a loop leaves it
	// free for moments only. A few quick attempts first catch those
	// moments; going to sleep and being woken would cost far more (a
	// futex round trip each way, and the lock moving between processes).
	for i := 0; i < spinAttempts; i++ {
		runtime.Gosched()
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := tryLockFile(f); err == nil || !errors.Is(err, errWouldBlock) {
			return err
		}
	}
	word := page.WakeWord()
	wakeAll := func() {
		page.ClearWoken()
		if page.BumpWake() == nil {
			futex(word, futexWake, math.MaxInt32, nil)
		}
	}
	stop := context.AfterFunc(ctx, wakeAll)
	defer stop()
	var stopWatch func()
	// The death watch (an inotify watch and a goroutine) is set up only
	// once a wait has lasted deathWatchAfter: most waits under contention
	// end sooner, and setting it up for each would cost more than the
	// wait. A holder that dies is then noticed within that time.
	timeout, watching := deathWatchAfter, false
	defer func() {
		if watching {
			stopWatch()
		}
	}()
	for {
		seq, err := page.WakeSeq()
		if err != nil {
			return err
		}
		if done, err := attempt(ctx, f, page); done {
			return err
		}
		ts := unix.NsecToTimespec(int64(timeout))
		switch err := futex(word, futexWait, seq, &ts); err {
		case nil, unix.EAGAIN, unix.EINTR:
		case unix.ETIMEDOUT:
			if watching {
				timeout = fallbackWait
				break
			}
			// One more short sleep after the watch is set up covers a
			// holder that died just before it.
			watching = true
			if w, err := watcherFor(f); err == nil {
				stopWatch = w.watch(wakeAll)
			} else {
				stopWatch = func() {}
			}
		default:
			return os.NewSyscallError("futex", err)
		}
	}
}

// A watcher is an inotify instance watching one lock file for closes.
// It is made on the first wait for that lock and kept, like the lock
// file, for the life of the process: closing an inotify descriptor
// waits for an SRCU grace period in the kernel (milliseconds), which
// would otherwise be added to contended acquisitions.
type watcher struct {
	mu  sync.Mutex // held by the watching goroutine
	in  *os.File
	buf [4096]byte
}

var watchers sync.Map // *os.File (lock file) → *watcher

func watcherFor(f *os.File) (*watcher, error) {
	if w, ok := watchers.Load(f); ok {
		return w.(*watcher), nil
	}
	ifd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("inotify_init1", err)
	}
	// The watch is on the open file itself (through /proc/self/fd), not
	// on whatever the path names now.
	const mask = unix.IN_CLOSE_WRITE | unix.IN_CLOSE_NOWRITE
	if _, err := unix.InotifyAddWatch(ifd, "/proc/self/fd/"+strconv.Itoa(int(f.Fd())), mask); err != nil {
		unix.Close(ifd)
		return nil, os.NewSyscallError("inotify_add_watch", err)
	}
	// Only the goroutine holding the lock's in-process semaphore gets
	// here, so there is no race for f; LoadOrStore keeps it that way.
	nw := &watcher{in: os.NewFile(uintptr(ifd), "inotify")}
	w, loaded := watchers.LoadOrStore(f, nw)
	if loaded {
		nw.in.Close()
	}
	return w.(*watcher), nil
}

// watch calls wake whenever a process closes the lock file (and a few
// times in the milliseconds after), until the returned function is
// called. The watching goroutine ends promptly after that.
func (w *watcher) watch(wake func()) (stop func()) {
	w.mu.Lock() // a previous watch's goroutine may still be ending
	w.in.SetReadDeadline(time.Unix(1, 0))
	for {
		if _, err := w.in.Read(w.buf[:]); err != nil {
			break // drained: earlier closes say nothing now
		}
	}
	w.in.SetReadDeadline(time.Time{})
	quit := make(chan struct{})
	go func() {
		defer w.mu.Unlock()
		for {
			if _, err := w.in.Read(w.buf[:]); err != nil {
				return
			}
			wake()
			for d := time.Millisecond; d <= 16*time.Millisecond; d *= 2 {
				t := time.NewTimer(d)
				select {
				case <-quit:
					t.Stop()
					return
				case <-t.C:
				}
				wake()
			}
		}
	}()
	return func() {
		close(quit)
		w.in.SetReadDeadline(time.Unix(1, 0))
	}
}

// wakeWaiters wakes one process sleeping in waitLockFile, unless one
// that was woken has not yet made its attempt; it reports whether it
// woke one.
func wakeWaiters(f *os.File, page *record.Page) bool {
	if clear, err := page.MarkWoken(); err != nil || !clear {
		return err != nil
	}
	if page.BumpWake() == nil {
		futex(page.WakeWord(), futexWake, 1, nil)
	}
	return true
}

// futex(2) operations (golang.org/x/sys/unix does not name them).
const (
	futexWait = 0
	futexWake = 1
)

// futex is the futex(2) system call on a word of shared memory (not
// FUTEX_PRIVATE_FLAG: the sleepers are in other processes).
func futex(addr *uint32, op int, val uint32, ts *unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), uintptr(op), uintptr(val), uintptr(unsafe.Pointer(ts)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
