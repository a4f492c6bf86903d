package proc

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"strconv"
	"syscall"
)

func bootID() (id [16]byte) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return id
	}
	h := bytes.ReplaceAll(bytes.TrimSpace(b), []byte("-"), nil)
	if len(h) == 32 {
		hex.Decode(id[:], h)
	}
	return id
}

// startStamp returns field 22 of /proc/PID/stat: the start time in
// clock ticks after boot.
func startStamp(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may contain
	// spaces or parentheses itself: start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, errors.New("malformed stat")
	}
	return strconv.ParseUint(string(f[19]), 10, 64)
}

func inspect(pid int) (exists bool, start uint64) {
	st, err := startStamp(pid)
	if err == nil {
		return true, st
	}
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return false, 0
	}
	return signalZero(pid), 0
}
