package proc

import (
	"errors"

	"golang.org/x/sys/windows"
)

func bootID() (id [16]byte) { return id }

// startStamp returns the process creation time as a FILETIME value.
func startStamp(pid int) (uint64, error) {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return 0, err
	}
	defer windows.CloseHandle(h)
	var c, e, k, u windows.Filetime
	if err := windows.GetProcessTimes(h, &c, &e, &k, &u); err != nil {
		return 0, err
	}
	var code uint32
	if err := windows.GetExitCodeProcess(h, &code); err == nil && code != 259 /* STILL_ACTIVE */ {
		return 0, errExited
	}
	return uint64(c.HighDateTime)<<32 | uint64(c.LowDateTime), nil
}

var errExited = errors.New("process has exited")

func inspect(pid int) (exists bool, start uint64) {
	st, err := startStamp(pid)
	switch {
	case err == nil:
		return true, st
	case errors.Is(err, errExited), errors.Is(err, windows.ERROR_INVALID_PARAMETER):
		return false, 0
	}
	return true, 0 // access denied and the like: cannot tell, assume alive
}
