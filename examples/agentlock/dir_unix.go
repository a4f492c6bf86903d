//go:build unix

package main

import (
	"errors"
	"io/fs"
	"os"
	"runtime"
	"strconv"
)

// defaultDir is the lock package's default lock directory, which it
// does not export; ls needs it to list the locks.
func defaultDir() (string, error) {
	switch runtime.GOOS {
	case "linux":
		return "/run/lock", nil
	case "darwin", "dragonfly", "freebsd", "netbsd", "openbsd":
		return "/var/tmp", nil
	}
	return "", &fs.PathError{Op: "lock", Path: "", Err: errors.ErrUnsupported}
}

// localNamespace is the lock package's ScopeLocal namespace of this
// process: one per user.
func localNamespace() string { return "u" + strconv.Itoa(os.Geteuid()) }
