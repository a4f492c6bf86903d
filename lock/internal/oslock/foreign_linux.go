package oslock

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// lockHolder reads /proc/locks, which lists every lock on the machine.
// POSIX (fcntl) locks are not looked at: on Linux they do not exclude
// flock(2) locks.
func lockHolder(lockPath, markPath string) (pid int, marked, ok bool) {
	lockDev, found := tableKey(lockPath)
	if !found {
		return 0, false, false
	}
	markDev, markOK := tableKey(markPath)
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return 0, false, false
	}
	// "1: FLOCK  ADVISORY  WRITE 1234 00:2a:5678 0 EOF"; waiters' lines
	// have "->" after the number. The holder's line and its mark's may
	// come in either order.
	readers := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) < 6 || string(f[1]) != "FLOCK" {
			continue
		}
		switch {
		case string(f[5]) == lockDev && !ok:
			// WRITE, or READ: a shared flock(2) (flock -s) excludes
			// this package's exclusive one just the same.
			n, err := strconv.Atoi(string(f[4]))
			if err != nil || n < 0 {
				n = 0
			}
			pid, ok = n, true
		case string(f[3]) == "READ" && markOK && string(f[5]) == markDev:
			readers[string(f[4])] = true
		}
	}
	return pid, ok && pid != 0 && readers[strconv.Itoa(pid)], ok
}

// tableKey is how /proc/locks names the file at path: major:minor:inode.
func tableKey(path string) (string, bool) {
	var st unix.Stat_t
	if unix.Lstat(path, &st) != nil {
		return "", false
	}
	return fmt.Sprintf("%02x:%02x:%d", unix.Major(uint64(st.Dev)), unix.Minor(uint64(st.Dev)), st.Ino), true
}

// mark takes a shared flock(2) lock on f. Shared locks never exclude
// each other, and nothing of this package locks a holder file
// exclusively; a file someone else holds exclusively stays unmarked.
func mark(f *os.File) {
	unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
}
