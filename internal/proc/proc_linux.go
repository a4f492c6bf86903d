package proc

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"strconv"
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
	_, st, err := stat(pid)
	return st, err
}

// stat returns fields 3 (state) and 22 (start time) of /proc/PID/stat.
func stat(pid int) (state byte, start uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) is in parentheses and may contain
	// spaces or parentheses itself: start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("malformed stat")
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, 0, errors.New("malformed stat")
	}
	start, err = strconv.ParseUint(string(f[19]), 10, 64)
	return f[0][0], start, err
}

func inspect(pid int) (exists bool, start uint64) {
	state, st, err := stat(pid)
	switch {
	case err == nil:
		// A zombie has exited (and dropped its locks) but has not been
		// reaped by its parent yet.
		return state != 'Z' && state != 'X', st
	case errors.Is(err, os.ErrNotExist):
		// Either gone, or hidden from us (/proc mounted with hidepid,
		// which hides other users' processes): ask the kernel.
		return signalZero(pid), 0
	}
	return signalZero(pid), 0
}
