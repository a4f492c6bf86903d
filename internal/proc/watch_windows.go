package proc

import (
	"os"

	"golang.org/x/sys/windows"
)

// On Windows the watch is a handle on the process, which is signalled
// once the process exits: a check is one wait that does not block,
// instead of opening the process, waiting, reading its creation time
// and closing it (see inspect). The handle also keeps the pid from
// being reused while it is open. A process this one may not open
// (another user's service) has no watch.
func newWatch(pid int) *Watch {
	h, err := windows.OpenProcess(windows.SYNCHRONIZE, false, uint32(pid))
	if err != nil {
		return nil
	}
	return &Watch{os.NewFile(uintptr(h), "process")}
}

func (w *Watch) exited() (exited, ok bool) {
	rc, err := w.f.SyscallConn()
	if err != nil {
		return false, false
	}
	cerr := rc.Control(func(h uintptr) {
		r, err := windows.WaitForSingleObject(windows.Handle(h), 0)
		switch {
		case err != nil:
		case r == windows.WAIT_OBJECT_0:
			exited, ok = true, true
		case r == uint32(windows.WAIT_TIMEOUT):
			ok = true
		}
	})
	return exited, ok && cerr == nil
}
