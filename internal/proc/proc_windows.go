package proc

import (
	"errors"
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

func bootID() (id [16]byte) { return id }

// startStamp returns the process creation time as a FILETIME value.
func startStamp(pid int) (uint64, error) {
	if pid == os.Getpid() {
		return creationTime(windows.CurrentProcess())
	}
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return 0, err
	}
	defer windows.CloseHandle(h)
	return creationTime(h)
}

func creationTime(h windows.Handle) (uint64, error) {
	var c, e, k, u windows.Filetime
	if err := windows.GetProcessTimes(h, &c, &e, &k, &u); err != nil {
		return 0, err
	}
	return uint64(c.HighDateTime)<<32 | uint64(c.LowDateTime), nil
}

// inspect decides whether pid has exited by waiting on its handle (a
// process handle is signalled when the process exits), not by its exit
// code: a process may exit with code 259, STILL_ACTIVE. A process that
// this one may not open (a service's process seen from a desktop
// program) is looked up in the system's process list instead, which
// needs no access to the process and gives its creation time.
func inspect(pid int) (exists bool, start uint64) {
	h, err := windows.OpenProcess(windows.SYNCHRONIZE|windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	switch {
	case err == nil:
		defer windows.CloseHandle(h)
		if r, err := windows.WaitForSingleObject(h, 0); err == nil && r == windows.WAIT_OBJECT_0 {
			return false, 0
		}
		st, _ := creationTime(h)
		return true, st
	case errors.Is(err, windows.ERROR_INVALID_PARAMETER):
		return false, 0 // no process has this id
	}
	found, st, err := listedStart(pid)
	if err != nil {
		return true, 0 // cannot tell: assume alive
	}
	return found, st
}

// listedStart looks pid up in the list of running processes
// (NtQuerySystemInformation(SystemProcessInformation), as Task
// Manager does) and returns its creation time. An entry without threads
// is a process that has exited but whose object someone still holds.
func listedStart(pid int) (found bool, start uint64, err error) {
	buf := make([]byte, 256<<10)
	for {
		var n uint32
		err = windows.NtQuerySystemInformation(windows.SystemProcessInformation, unsafe.Pointer(&buf[0]), uint32(len(buf)), &n)
		if err != windows.STATUS_INFO_LENGTH_MISMATCH {
			break
		}
		buf = make([]byte, max(2*len(buf), int(n)+64<<10))
	}
	if err != nil {
		return false, 0, err
	}
	for off := 0; off+int(unsafe.Sizeof(windows.SYSTEM_PROCESS_INFORMATION{})) <= len(buf); {
		p := (*windows.SYSTEM_PROCESS_INFORMATION)(unsafe.Pointer(&buf[off]))
		if p.UniqueProcessID == uintptr(pid) {
			return p.NumberOfThreads > 0, uint64(p.CreateTime), nil
		}
		if p.NextEntryOffset == 0 {
			break
		}
		off += int(p.NextEntryOffset)
	}
	return false, 0, nil
}
