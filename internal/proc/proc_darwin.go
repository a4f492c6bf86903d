package proc

import (
	"encoding/hex"
	"strings"

	"golang.org/x/sys/unix"
)

// bootID is kern.bootsessionuuid, a UUID made at every boot.
// (kern.boottime is not used: the kernel adjusts it when the clock is
// stepped and across sleep, which would make live holders look stale.)
func bootID() (id [16]byte) {
	s, err := unix.Sysctl("kern.bootsessionuuid")
	if err != nil {
		return id
	}
	h := strings.ReplaceAll(strings.TrimSpace(s), "-", "")
	if len(h) == 32 {
		hex.Decode(id[:], []byte(h))
	}
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
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil || int(kp.Proc.P_pid) != pid {
		return true, 0
	}
	const sZomb = 5 // SZOMB in <sys/proc.h>: exited, not yet reaped
	if kp.Proc.P_stat == sZomb {
		return false, 0
	}
	tv := kp.Proc.P_starttime
	return true, uint64(tv.Sec)*1e6 + uint64(tv.Usec)
}
