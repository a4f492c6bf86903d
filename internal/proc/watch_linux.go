package proc

import (
	"os"

	"golang.org/x/sys/unix"
)

func newWatch(pid int) *Watch {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil
	}
	return &Watch{os.NewFile(uintptr(fd), "pidfd")}
}

func (w *Watch) exited() (exited, ok bool) {
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
