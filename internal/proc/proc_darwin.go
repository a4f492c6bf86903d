package proc

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

func bootID() (id [16]byte) {
	tv, err := unix.SysctlTimeval("kern.boottime")
	if err != nil {
		return id
	}
	binary.LittleEndian.PutUint64(id[:8], uint64(tv.Sec))
	binary.LittleEndian.PutUint64(id[8:], uint64(tv.Usec))
	return id
}

func startStamp(pid int) (uint64, error) {
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil {
		return 0, err
	}
	if int(kp.Proc.P_pid) != pid {
		return 0, unix.ESRCH
	}
	tv := kp.Proc.P_starttime
	return uint64(tv.Sec)*1e6 + uint64(tv.Usec), nil
}

func inspect(pid int) (exists bool, start uint64) {
	if !signalZero(pid) {
		return false, 0
	}
	st, _ := startStamp(pid)
	return true, st
}
