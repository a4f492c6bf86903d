//go:build !linux && !darwin && !dragonfly && !freebsd && !netbsd && !openbsd

package lock

// Without a watch (see notify_linux.go), every acquisition checks the
// identity of the lock's files with system calls, and a held lease's
// Lost is nil: the removal of its files is not seen while it holds.

type watchState struct{}

func watchFiles(l *fileLock) error { return errNoWatch }

func unwatchFiles(l *fileLock) {}

func pathsUnchanged(l *fileLock) bool { return false }
