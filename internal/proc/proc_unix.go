//go:build unix

package proc

import (
	"errors"
	"syscall"
)

// signalZero reports whether pid exists, by sending it signal 0.
// EPERM means it exists but belongs to someone else.
func signalZero(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
