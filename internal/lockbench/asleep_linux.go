package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// asleepMethod is empty: waitAsleep sees the waiter's sleep.
const asleepMethod = ""

// waitAsleep waits until a thread of process pid sleeps in a lock wait:
// in flock(2), or in a futex wait on shared memory (FUTEX_WAIT or
// FUTEX_WAIT_BITSET without FUTEX_PRIVATE_FLAG; the Go runtime's own sleeps are all private). It
// reads /proc/PID/task/*/syscall, and gives up after limit, reporting
// whether it saw the sleep.
func waitAsleep(pid int, limit time.Duration) bool {
	tasks := filepath.Join("/proc", strconv.Itoa(pid), "task")
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(50 * time.Microsecond) {
		ents, err := os.ReadDir(tasks)
		if err != nil {
			time.Sleep(5 * time.Millisecond)
			return false
		}
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(tasks, e.Name(), "syscall"))
			if err != nil {
				continue
			}
			if inLockWait(strings.Fields(string(b))) {
				return true
			}
		}
	}
	return false
}

func inLockWait(f []string) bool {
	if len(f) < 3 {
		return false // "running", or not in a system call
	}
	nr, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return false
	}
	switch nr {
	case unix.SYS_FLOCK:
		return true
	case unix.SYS_FUTEX:
		op, err := strconv.ParseUint(strings.TrimPrefix(f[2], "0x"), 16, 64)
		if err != nil || op&futexPrivate != 0 {
			return false
		}
		cmd := op &^ futexClockRealtime
		return cmd == futexWait || cmd == futexWaitBitset
	}
	return false
}

// futex(2) operations (golang.org/x/sys/unix does not name them).
const (
	futexWait          = 0
	futexWaitBitset    = 9
	futexPrivate       = 128
	futexClockRealtime = 256
)
