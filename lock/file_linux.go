package lock

import (
	"context"
	"errors"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// defaultDir is /run/lock: the directory the Filesystem Hierarchy
// Standard gives for lock files shared between programs, on a tmpfs
// (cleared at boot, never by a cleaner while running), root-owned and
// sticky, so that every user may create lock files there and none may
// remove another's.
func defaultDir() (string, error) {
	return "/run/lock", nil
}

// fallbackWait bounds each sleep in waitLockFile. Releases and crashes
// both wake sleepers through inotify, so this only matters if an event
// is missed (for example on a network file system) and is kept long
// enough to cost nothing while waiting.
const fallbackWait = 250 * time.Millisecond

// waitLockFile blocks until f is locked or ctx is done.
//
// A blocking flock(2) cannot be cancelled: a goroutine left in it after
// ctx ends would later take the lock and drop it again, a phantom hold
// that other processes can observe. Instead every attempt here is
// non-blocking, and between attempts the goroutine sleeps in the
// runtime's poller on an inotify descriptor watching the lock file:
//
//   - a releaser that finds the page's waiters flag set (announce sets
//     it before every attempt) writes one byte to the lock file, which
//     is an IN_MODIFY event;
//   - a holder that dies closes the file, which is an IN_CLOSE event
//     (the kernel drops the lock just after; a short retry schedule
//     covers that gap);
//   - cancellation sets a past read deadline on the descriptor.
//
// So waiters wake at kernel speed, use no CPU while asleep, and never
// hold the lock after returning an error.
func waitLockFile(ctx context.Context, f *os.File, announce func() error) error {
	ifd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("inotify_init1", err)
	}
	in := os.NewFile(uintptr(ifd), "inotify")
	defer in.Close()
	// The watch is on the open file itself (through /proc/self/fd), not
	// on whatever the path names now.
	const mask = unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_CLOSE_WRITE | unix.IN_CLOSE_NOWRITE
	if _, err := unix.InotifyAddWatch(ifd, "/proc/self/fd/"+strconv.Itoa(int(f.Fd())), mask); err != nil {
		return os.NewSyscallError("inotify_add_watch", err)
	}

	var mu sync.Mutex // orders deadline updates against cancellation
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		in.SetReadDeadline(time.Unix(1, 0))
		mu.Unlock()
	})
	defer stop()

	var buf [4096]byte
	delay := fallbackWait
	for {
		if err := announce(); err != nil {
			return err
		}
		err := tryLockFile(f)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errWouldBlock) {
			return err
		}
		mu.Lock()
		if err := ctx.Err(); err != nil {
			mu.Unlock()
			return err
		}
		in.SetReadDeadline(time.Now().Add(delay))
		mu.Unlock()
		_, err = in.Read(buf[:])
		switch {
		case err == nil:
			// Woken by an event. If the next attempt still fails, the
			// event may have come just before the kernel dropped a dead
			// holder's lock: retry soon, then back off.
			delay = time.Millisecond
		case errors.Is(err, os.ErrDeadlineExceeded):
			if err := ctx.Err(); err != nil {
				return err
			}
			delay = min(2*delay, fallbackWait)
		default:
			return err
		}
	}
}
