package oslock

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/windows"

	"github.com/agentlock/agentlock/internal/record"
)

// wakeWaiters wakes one process sleeping in the Wine wait of
// waitLockFile (see wineWaitLockFile), unless one is already awake. On
// Windows itself the kernel queues LockFileEx waiters and grants the
// lock to the next one, and nobody sets the waiters flag, so the caller
// (which only calls this when the flag was set) never gets here.
func wakeWaiters(f *os.File, page *record.Page) bool {
	if clear, err := page.MarkWoken(); err != nil || !clear {
		return err != nil
	}
	if ev := wakeEventFor(f); ev != 0 {
		windows.SetEvent(ev)
	}
	return true
}

// onWine reports whether this process runs under Wine, whose ntdll has
// wine_get_version.
var onWine = sync.OnceValue(func() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
})

// wineFallbackWait bounds each sleep in wineWaitLockFile: a safety net
// for a lost wake-up (a waiter killed just after it was woken, an event
// that could not be opened).
const wineFallbackWait = 100 * time.Millisecond

// wineWaitLockFile is waitLockFile for Wine. Every attempt is
// non-blocking; between attempts the goroutine waits for one of:
//
//   - the lock's wake event (see wakeEventFor), an auto-reset event that
//     a releaser sets when the page's waiters flag says someone sleeps.
//     Before each attempt a sleeper sets the waiters flag and clears the
//     woken flag, as on Unix; since the event stays set until a wait
//     consumes it, a release between a failed attempt and the wait is
//     not missed, and a set event wakes a single sleeper (no thundering
//     herd), which sets the flag again so that the next release wakes
//     the next one;
//   - the holder's process, found through the holder record, which is
//     signalled when it exits: a dead holder cannot wake anyone, and the
//     system drops its lock as it dies (tried again after 1, 2, 4, 8 and
//     16 ms, in case the lock is dropped just after the process is
//     signalled);
//   - a cancel event set by context.AfterFunc;
//   - wineFallbackWait.
//
// A wait that ends with a wake-up is always followed by an attempt, so
// a wake-up is never lost with a cancelled waiter: the cancel event
// comes first in the wait, and a wait that reports it has not consumed
// the wake event.
func wineWaitLockFile(ctx context.Context, f *os.File, page *record.Page, l Waiter) error {
	cancel, done, err := cancelEvent(ctx)
	if err != nil {
		return err
	}
	defer done()
	wake := wakeEventFor(f)
	var holder holderProcess
	defer holder.close()
	for {
		if done, err := attempt(ctx, f, page, l); done {
			return err
		}
		hs := []windows.Handle{cancel}
		if wake != 0 {
			hs = append(hs, wake)
		}
		timeout := holder.update(page)
		if holder.h != 0 && !holder.exited {
			hs = append(hs, holder.h)
		}
		r, werr := windows.WaitForMultipleObjects(hs, false, uint32(timeout/time.Millisecond))
		switch {
		case r == windows.WAIT_OBJECT_0:
			return ctx.Err()
		case r == uint32(windows.WAIT_TIMEOUT):
		case r < windows.WAIT_OBJECT_0+uint32(len(hs)) && hs[r-windows.WAIT_OBJECT_0] == wake:
		case r < windows.WAIT_OBJECT_0+uint32(len(hs)):
			holder.exited = true
		default:
			return os.NewSyscallError("WaitForMultipleObjects", werr)
		}
	}
}

// holderProcess is the process of the holder that wineWaitLockFile
// waits for, with the retries after it exited.
type holderProcess struct {
	pid    int64
	start  uint64
	h      windows.Handle // 0: not known, not another process, or cannot be opened
	exited bool
	retry  time.Duration // next pause after the exit
}

// update follows the holder record to its current holder and returns
// how long to wait at most.
func (hp *holderProcess) update(page *record.Page) time.Duration {
	r, err := page.Load()
	if err != nil || r.State != record.Held || r.PID <= 0 || r.PID == int64(os.Getpid()) {
		hp.close()
		return wineFallbackWait
	}
	if r.PID != hp.pid || r.Start != hp.start {
		hp.close()
		hp.pid, hp.start = r.PID, r.Start
		h, err := windows.OpenProcess(windows.SYNCHRONIZE|windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(r.PID))
		if err == nil {
			var c, e, k, u windows.Filetime
			if windows.GetProcessTimes(h, &c, &e, &k, &u) == nil && r.Start != 0 &&
				uint64(c.HighDateTime)<<32|uint64(c.LowDateTime) != r.Start {
				windows.CloseHandle(h) // the pid was reused: the holder is gone
				hp.exited = true
			} else {
				hp.h = h
			}
		}
	}
	if !hp.exited {
		return wineFallbackWait
	}
	// Gone: its lock is about to be dropped, if it has not been yet.
	if hp.retry == 0 {
		hp.retry = time.Millisecond
	}
	d := hp.retry
	if hp.retry < wineFallbackWait {
		hp.retry *= 2
	}
	return min(d, wineFallbackWait)
}

func (hp *holderProcess) close() {
	if hp.h != 0 {
		windows.CloseHandle(hp.h)
	}
	*hp = holderProcess{}
}

// wakeEventSDDL is the security descriptor of a wake event this package
// creates: SYSTEM and Administrators get full access (EVENT_ALL_ACCESS);
// authenticated users may wait for it and set it
// (SYNCHRONIZE|EVENT_MODIFY_STATE), so a service and a desktop program
// wake each other.
const wakeEventSDDL = "D:(A;;0x1f0003;;;SY)(A;;0x1f0003;;;BA)(A;;0x100002;;;AU)"

// wakeEvents caches the wake event of each lock file (*os.File →
// *wakeEvent), for the life of the process like the file itself.
var wakeEvents sync.Map

type wakeEvent struct {
	once sync.Once
	h    windows.Handle // 0 if it could not be made
}

// wakeEventFor returns the wake event of the lock file f, creating or
// opening it on first use, or 0 if that failed (waiters then wake at
// wineFallbackWait). The event is named after the file's identity
// (volume serial number and file index), not its path, so that every
// process finds the same event however it spells the path:
// Global\agentlock.wake.VOLUME.INDEX, or Local\... where the global
// namespace is refused. Anyone may plant an object with that name; the
// worst it can do is set the event (a spurious wake-up: the waiter tries
// and sleeps again) or make it unusable (waiters fall back to polling at
// wineFallbackWait), never grant the lock.
func wakeEventFor(f *os.File) windows.Handle {
	v, ok := wakeEvents.Load(f)
	if !ok {
		v, _ = wakeEvents.LoadOrStore(f, new(wakeEvent))
	}
	e := v.(*wakeEvent)
	e.once.Do(func() { e.h = openWakeEvent(f) })
	return e.h
}

func openWakeEvent(f *os.File) windows.Handle {
	var fi windows.ByHandleFileInformation
	if windows.GetFileInformationByHandle(windows.Handle(f.Fd()), &fi) != nil {
		return 0
	}
	sa, err := securityAttributes(wakeEventSDDL)
	if err != nil {
		return 0
	}
	id := fmt.Sprintf("agentlock.wake.%08x.%08x%08x", fi.VolumeSerialNumber, fi.FileIndexHigh, fi.FileIndexLow)
	for _, ns := range []string{`Global\`, `Local\`} {
		p, err := windows.UTF16PtrFromString(ns + id)
		if err != nil {
			return 0
		}
		// Auto-reset, not set. An existing event is opened, with
		// ERROR_ALREADY_EXISTS and a valid handle.
		h, err := windows.CreateEventEx(sa, p, 0, windows.SYNCHRONIZE|windows.EVENT_MODIFY_STATE)
		if h != 0 && (err == nil || err == windows.ERROR_ALREADY_EXISTS) {
			return h
		}
	}
	return 0
}
