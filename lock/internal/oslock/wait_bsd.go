//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package oslock

import (
	"context"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentlock/agentlock/internal/record"
)

// fallbackWait bounds each sleep in waitLockFile: the safety net for a
// release or death that the kqueue does not report (a holder's death on
// NetBSD, OpenBSD and DragonFly, whose kqueue reports no closes).
const fallbackWait = 50 * time.Millisecond

// waitLockFile: see the Linux version for the design; here a kqueue watches the lock file and a
// pipe registered in the same kqueue carries cancellation. The watch
// reports the releaser's one-byte write (see wakeWaiters) and, where
// the system offers it, the unlock or close that a dying holder's exit
// makes (see deathNotes): on macOS NOTE_FUNLOCK, posted after every
// flock unlock including the implicit one at close; on FreeBSD
// NOTE_CLOSE and NOTE_CLOSE_WRITE. If the kqueue or the watch cannot be
// set up, the wait goes on at fallbackWait rather than fail.
func waitLockFile(ctx context.Context, f *os.File, page *record.Page, l Waiter) error {
	w, err := newKqWait(ctx, f)
	if err != nil {
		return err
	}
	defer w.close()
	delay := fallbackWait
	for {
		if done, err := attempt(ctx, f, page, l); done {
			return err
		}
		woke, err := w.sleep(ctx, delay)
		if err != nil {
			return err
		}
		if woke {
			delay = time.Millisecond
		} else {
			delay = min(2*delay, fallbackWait)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// A kqWait is the kqueue of one waitLockFile, with its cancellation
// pipe; kq is -1 if there is none, and the wait then sleeps on a timer.
type kqWait struct {
	kq   int
	r, w *os.File // the pipe
	stop func()   // stops the AfterFunc, and waits for a running one
}

func newKqWait(ctx context.Context, f *os.File) (*kqWait, error) {
	w := &kqWait{kq: -1}
	// A kqueue is not inherited across fork, so it cannot leak into a
	// child; os.Pipe is close-on-exec atomically (pipe2) or under
	// syscall.ForkLock where pipe2 is missing (macOS).
	kq, err := unix.Kqueue()
	if err != nil {
		return w, nil
	}
	unix.CloseOnExec(kq)
	r, pw, err := os.Pipe()
	if err != nil {
		unix.Close(kq)
		return w, nil
	}
	var pipe [1]unix.Kevent_t
	unix.SetKevent(&pipe[0], int(r.Fd()), unix.EVFILT_READ, unix.EV_ADD)
	if _, err := unix.Kevent(kq, pipe[:], nil, nil); err != nil {
		unix.Close(kq)
		r.Close()
		pw.Close()
		return w, nil
	}
	w.kq, w.r, w.w = kq, r, pw
	watchLockFile(kq, f)
	// The pipe is closed (in close, so after stop) only once the
	// AfterFunc can no longer write to it.
	fired := make(chan struct{})
	stopFn := context.AfterFunc(ctx, func() {
		pw.Write([]byte{0})
		close(fired)
	})
	w.stop = func() {
		if !stopFn() {
			<-fired
		}
	}
	return w, nil
}

// watchLockFile registers the lock file in kq, with the death notes if
// the system accepts them (an older kernel may refuse unknown flags),
// else without. A watch that cannot be registered at all leaves the
// wait to its timer.
func watchLockFile(kq int, f *os.File) {
	for _, extra := range []uint32{deathNotes, 0} {
		var ev [1]unix.Kevent_t
		unix.SetKevent(&ev[0], int(f.Fd()), unix.EVFILT_VNODE, unix.EV_ADD|unix.EV_CLEAR)
		ev[0].Fflags = unix.NOTE_WRITE | unix.NOTE_EXTEND | unix.NOTE_ATTRIB | extra
		if _, err := unix.Kevent(kq, ev[:], nil, nil); err == nil {
			return
		}
		if extra == 0 {
			return
		}
	}
}

// sleep waits for an event on the kqueue (or, without one, for ctx) for
// at most d, and reports whether something woke it before d was up.
func (w *kqWait) sleep(ctx context.Context, d time.Duration) (bool, error) {
	if w.kq < 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return true, nil
		case <-t.C:
			return false, nil
		}
	}
	var events [4]unix.Kevent_t
	ts := unix.NsecToTimespec(int64(d))
	n, err := unix.Kevent(w.kq, nil, events[:], &ts)
	switch {
	case err == unix.EINTR:
		return false, nil
	case err != nil:
		return false, os.NewSyscallError("kevent", err)
	}
	return n > 0, nil
}

func (w *kqWait) close() {
	if w.kq < 0 {
		return
	}
	w.stop()
	unix.Close(w.kq)
	w.r.Close()
	w.w.Close()
}

// wakeWaiters makes the event that processes sleeping in waitLockFile
// watch for: a one-byte write to the lock file (its content means
// nothing). The file may be open read-only (see openFile); the sleepers
// then wake at their fallback interval, or at once on macOS, where the
// unlock itself is reported (NOTE_FUNLOCK).
func wakeWaiters(f *os.File, page *record.Page) bool {
	unix.Pwrite(int(f.Fd()), []byte{0}, 0)
	return true
}
