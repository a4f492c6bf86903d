package oslock

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// foreignHolder returns the process holding an exclusive flock(2) on
// the file at lockPath according to /proc/locks, which lists every
// lock on the machine: how a holder that publishes no record (flock(1),
// Python's fcntl.flock) is found. POSIX (fcntl) locks are not listed:
// on Linux they do not exclude flock(2) locks. ok is false if no
// process holds such a lock or the table cannot be read. A pid is 0
// when the holder is in another pid namespace.
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
