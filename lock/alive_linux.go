package lock

import (
	"os"

	"golang.org/x/sys/unix"
)

// A procWatch tells whether one process has exited without reading
// /proc: a pidfd (Linux 5.3 and later), which polls readable once the
// process is gone.
type procWatch struct{ f *os.File }

// watchProcess opens a pidfd for pid, or returns nil where there is
// none. The caller checks afterwards, by other means, that the process
// is the one it means (the pid may have been reused before the open).
func watchProcess(pid int) *procWatch {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil
	}
	return &procWatch{os.NewFile(uintptr(fd), "pidfd")}
}

// exited reports whether the process has exited; ok is false if the
// watch cannot tell (closed meanwhile).
func (w *procWatch) exited() (exited, ok bool) {
	rc, err := w.f.SyscallConn()
	if err != nil {
		return false, false
	}
	cerr := rc.Control(func(fd uintptr) {
		p := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			n, err := unix.Poll(p[:], 0)
			if err == unix.EINTR {
				continue
			}
			ok = err == nil
			exited = n > 0 && p[0].Revents != 0
			return
		}
	})
	return exited, ok && cerr == nil
}

func (w *procWatch) close() { w.f.Close() }
