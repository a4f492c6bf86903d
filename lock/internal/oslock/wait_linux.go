package oslock

import (
	"context"
	"errors"
	"math"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/agentlock/agentlock/internal/record"
)

// fallbackWait bounds the first sleep in waitLockFile while the lock's
// holder has published its record, and maxFallbackWait the later ones
// (see nextFallback). Releases wake a sleeper through the futex, and
// deaths, closes, truncations and changes to the files through the
// watch (WatchFiles), so the timeout is only a safety net: for a woken
// sleeper that stops before its attempt (a debugger, SIGSTOP), which
// leaves the others asleep until their timeout. The sleeps are long
// because every timeout costs the sleeping process the Go runtime's
// monitor thread waking up and polling for about 10 ms (some 60 short
// sleeps of its own; BENCHMARKS.md has the cost): a wait of seconds
// times out a few times, not several times a second.
const (
	fallbackWait    = 250 * time.Millisecond
	maxFallbackWait = time.Second
)

// foreignWait bounds each sleep while the lock is held by a process that
// published no record: one that locked the file without this package
// (flock(1), Python's fcntl.flock), which does not wake sleepers when it
// unlocks. Its exit is seen by the watch; an unlock without a close is
// seen within this interval.
const foreignWait = 10 * time.Millisecond

// unwatchedWait bounds each sleep of a lock that has no watch (inotify
// unavailable or out of watches): a holder's death is seen within it.
const unwatchedWait = 50 * time.Millisecond

// spinAttempts is how many quick attempts a wait makes before it sleeps
// (BENCHMARKS.md: fewer or more lowered contended throughput).
const spinAttempts = 10

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
//     lock file as it dies, which the process's watch on the lock file
//     (WatchFiles, whose LockClosed the lock package turns into
//     WakeSleepers) wakes this process's sleepers at once;
//   - a holder that publishes no record (a foreign locker) cannot wake
//     anyone either; sleeps are then short (foreignWait);
//   - before all this, a wait makes a few quick attempts (spinAttempts),
//     which let a contending process take the lock in the moment
//     between another's release and its next acquisition
//     (BENCHMARKS.md);
//   - cancellation bumps the sequence and wakes the sleepers (the others
//     go back to sleep), and the cancelled goroutine returns without
//     ever having blocked in flock(2);
//   - a page truncated under the mapping makes the futex call fail with
//     EFAULT; the page is restored and the wait goes on.
func waitLockFile(ctx context.Context, f *os.File, page *record.Page, l Waiter) error {
	// A holder that releases and retakes the lock in a loop leaves it
	// free for moments only. A few quick attempts first catch those
	// moments; going to sleep and being woken would cost far more (a
	// futex round trip each way, and the lock moving between processes).
	if done, err := spin(ctx, f); done {
		return err
	}
	if ctx.Done() != nil {
		// (A context that can never be cancelled needs no wake-up, and
		// then costs nothing on the way out.)
		stop := context.AfterFunc(ctx, func() { wakeSleepers(page) })
		defer stop()
	}
	timeout := time.Duration(0)
	if l != nil {
		ws := l.WaitState()
		ws.Sleepers.Add(1)
		defer ws.Sleepers.Add(-1)
		// A close the watch saw just before this wait counted as a
		// sleeper may be a holder dying now: look again soon.
		if time.Now().UnixNano()-ws.LastClose.Load() < int64(20*time.Millisecond) {
			timeout = time.Millisecond
		}
	}
	faults := 0
	fallback := fallbackWait
	maxSleep := maxFallbackWait
	if l == nil || !l.Watched() {
		maxSleep = unwatchedWait // deaths are seen only by looking
	}
	for {
		seq, done, err := attemptArmed(ctx, l, f, page)
		if done {
			return err
		}
		d := timeout
		if d == 0 {
			d = min(sleepFor(l, page, fallback), maxSleep)
		}
		timeout = 0
		ts := unix.NsecToTimespec(int64(d))
		err = futexWait(page.WakeWord(), seq, &ts)
		if err != unix.EFAULT {
			faults = 0
		}
		fallback = nextFallback(fallback, d, err)
		switch err {
		case nil, unix.EAGAIN, unix.EINTR, unix.ETIMEDOUT:
		case unix.EFAULT:
			// The file shrank under the mapping: restore it, unless it
			// was not that (faults again right after).
			if faults++; faults > 3 || !page.Repair() {
				return record.ErrFault
			}
			continue
		default:
			return os.NewSyscallError("futex", err)
		}
	}
}

// nextFallback returns the safety-net timeout after a sleep of d that
// ended with err, when it was cur: a safety-net sleep (d == cur) that
// timed out doubles it, up to maxFallbackWait; a wake-up (the wake
// sequence moved) starts again from fallbackWait; anything else (a
// short sleep for a foreign holder, an interrupted sleep) leaves it.
func nextFallback(cur, d time.Duration, err error) time.Duration {
	switch {
	case err == nil || err == unix.EAGAIN:
		return fallbackWait
	case err == unix.ETIMEDOUT && d == cur:
		return min(2*cur, maxFallbackWait)
	}
	return cur
}

// spin makes spinAttempts quick attempts, yielding before each; done
// reports that the wait is over (the lock taken, or err).
func spin(ctx context.Context, f *os.File) (done bool, err error) {
	for i := 0; i < spinAttempts; i++ {
		runtime.Gosched()
		if err := ctx.Err(); err != nil {
			return true, err
		}
		if err := tryLockFile(f); err == nil || !errors.Is(err, errWouldBlock) {
			return true, err
		}
	}
	return false, nil
}

// sleepFor returns how long a sleeper may sleep: fallback while the
// page says the lock is held by a live holder that publishes records,
// foreignWait otherwise (the lock is held, so by someone who published
// nothing, or whose record is a dead process's).
func sleepFor(l Waiter, page *record.Page, fallback time.Duration) time.Duration {
	if l == nil {
		return foreignWait
	}
	if l.HolderLive(page) {
		return fallback
	}
	return foreignWait
}

// attemptArmed is attempt with the wake sequence to sleep on if the
// lock is still held, read in the same touch of the page that announces
// the sleeper (Arm), and with the lock at hand rather than looked up.
func attemptArmed(ctx context.Context, l Waiter, f *os.File, page *record.Page) (seq uint32, done bool, err error) {
	if err := ctx.Err(); err != nil {
		return 0, true, err
	}
	if l != nil && l.Moved() {
		return 0, true, ErrMoved
	}
	if seq, err = page.Arm(); err != nil {
		return 0, true, err
	}
	err = tryLockFile(f)
	if errors.Is(err, errWouldBlock) {
		return seq, false, nil
	}
	return seq, true, err
}

// releaseWake wakes one process sleeping in waitLockFile after a
// release, if any said it was, with one touch of the page (TakeWake)
// and one futex call: a releaser that finds a woken sleeper still on
// its way skips the wake-up and leaves the flag for the next release.
func releaseWake(_ *os.File, page *record.Page) {
	if wake, _ := page.TakeWake(); wake {
		futexWake(page.WakeWord(), 1)
	}
}

// futex(2) operations (golang.org/x/sys/unix does not name them).
const (
	futexOpWait = 0
	futexOpWake = 1
)

// futexWait is FUTEX_WAIT on a word of shared memory (not
// FUTEX_PRIVATE_FLAG: the sleepers are in other processes): it sleeps
// while *addr is val, at most ts.
func futexWait(addr *uint32, val uint32, ts *unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexOpWait, uintptr(val), uintptr(unsafe.Pointer(ts)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// futexWake is FUTEX_WAKE of up to n sleepers on a word of shared
// memory. It never blocks, so it is a raw system call: entering the
// runtime's system-call bookkeeping after a while without any (a
// holder that kept the lock for more than about 10 ms) first wakes the
// runtime's monitor thread with a system call of its own, which would
// delay the sleeper's wake-up by that much (BENCHMARKS.md). It could
// block only on a page fault for addr, which the caller has just
// touched (the page is resident).
func futexWake(addr *uint32, n int) {
	unix.RawSyscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexOpWake, uintptr(n), 0, 0, 0)
}

// wakeSleepers wakes every process sleeping on page (see waitLockFile);
// each makes an attempt and sleeps again if the lock is still held.
func wakeSleepers(page *record.Page) {
	if page == nil {
		return
	}
	page.ClearWoken()
	if page.BumpWake() == nil {
		futexWake(page.WakeWord(), math.MaxInt32)
	}
}
