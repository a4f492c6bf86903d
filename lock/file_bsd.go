//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package lock

import (
	"context"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentlock/agentlock/internal/record"
)

// defaultDir is /var/tmp: root-owned and sticky on macOS and the BSDs,
// so every user may create lock files there and none may remove
// another's, and unlike /tmp it is not emptied at boot or by periodic
// cleaners of /tmp.
func defaultDir() (string, error) {
	return "/var/tmp", nil
}

// fallbackWait bounds each sleep in waitLockFile. kqueue reports writes
// to the lock file (a release) but, unlike inotify, not the close that
// a dying holder makes, so a crashed holder is noticed within this
// interval.
const fallbackWait = 50 * time.Millisecond

// waitLockFile blocks until f is locked or ctx is done. See the Linux
// version for the design; here a kqueue watches the lock file for the
// releaser's one-byte write, and a pipe registered in the same kqueue
// carries cancellation.
func waitLockFile(ctx context.Context, f *os.File, page *record.Page) error {
	kq, err := unix.Kqueue()
	if err != nil {
		return os.NewSyscallError("kqueue", err)
	}
	defer unix.Close(kq)
	unix.CloseOnExec(kq)
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil {
		return os.NewSyscallError("pipe", err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	unix.CloseOnExec(p[0])
	unix.CloseOnExec(p[1])

	var changes [2]unix.Kevent_t
	unix.SetKevent(&changes[0], int(f.Fd()), unix.EVFILT_VNODE, unix.EV_ADD|unix.EV_CLEAR)
	changes[0].Fflags = unix.NOTE_WRITE | unix.NOTE_EXTEND | unix.NOTE_ATTRIB
	unix.SetKevent(&changes[1], p[0], unix.EVFILT_READ, unix.EV_ADD)
	if _, err := unix.Kevent(kq, changes[:], nil, nil); err != nil {
		return os.NewSyscallError("kevent", err)
	}
	// The pipe is closed (deferred above, so after this) only once the
	// AfterFunc can no longer write to it: a write to a closed, and
	// perhaps reused, descriptor could land in someone else's file.
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		unix.Write(p[1], []byte{0})
		close(fired)
	})
	defer func() {
		if !stop() {
			<-fired
		}
	}()

	var events [4]unix.Kevent_t
	delay := fallbackWait
	for {
		if done, err := attempt(ctx, f, page); done {
			return err
		}
		ts := unix.NsecToTimespec(int64(delay))
		n, err := unix.Kevent(kq, nil, events[:], &ts)
		switch {
		case err == unix.EINTR:
		case err != nil:
			return os.NewSyscallError("kevent", err)
		case n > 0:
			delay = time.Millisecond
		default:
			delay = min(2*delay, fallbackWait)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// wakeWaiters makes the event that processes sleeping in waitLockFile
// watch for: a one-byte write to the lock file (its content means
// nothing). The file may be open read-only (see openFile); the sleepers
// then wake at their fallback interval.
func wakeWaiters(f *os.File, page *record.Page) bool {
	unix.Pwrite(int(f.Fd()), []byte{0}, 0)
	return true
}
