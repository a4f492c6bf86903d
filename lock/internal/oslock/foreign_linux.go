package oslock

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// foreignHolder reads /proc/locks, which lists every lock on the
// machine. POSIX (fcntl) locks are not looked at: on Linux they do not
// exclude flock(2) locks.
func foreignHolder(lockPath string) (pid int, ok bool) {
	var st unix.Stat_t
	if unix.Lstat(lockPath, &st) != nil {
		return 0, false
	}
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return 0, false
	}
	// "1: FLOCK  ADVISORY  WRITE 1234 00:2a:5678 0 EOF"; waiters' lines
	// have "->" after the number.
	dev := fmt.Sprintf("%02x:%02x:%d", unix.Major(uint64(st.Dev)), unix.Minor(uint64(st.Dev)), st.Ino)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) < 6 || string(f[1]) != "FLOCK" || string(f[3]) != "WRITE" || string(f[5]) != dev {
			continue
		}
		pid, err := strconv.Atoi(string(f[4]))
		if err != nil || pid < 0 {
			pid = 0
		}
		return pid, true
	}
	return 0, false
}
