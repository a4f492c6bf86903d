//go:build windows

package logon

import (
	"errors"
	"syscall"
)

// Winsock error numbers; package syscall names its own invented values
// ECONNREFUSED and so on, which Winsock never returns.
const (
	wsaENETUNREACH  syscall.Errno = 10051
	wsaECONNREFUSED syscall.Errno = 10061
	wsaEHOSTUNREACH syscall.Errno = 10065
)

func isRefused(err error) bool {
	return errors.Is(err, wsaECONNREFUSED) || errors.Is(err, syscall.ECONNREFUSED)
}

func isUnreachable(err error) bool {
	return errors.Is(err, wsaENETUNREACH) || errors.Is(err, wsaEHOSTUNREACH)
}
