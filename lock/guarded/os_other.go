//go:build !darwin && !dragonfly && !freebsd && !linux && !netbsd && !openbsd && !windows

package guarded

import "os"

// On this platform Open fails (checkDir reports
// errors.ErrUnsupported); these portable versions only keep the
// package building.

func guardedOpenRead(path string) (*os.File, error) { return os.Open(path) }

func guardedCreateTemp(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
}

func guardedRename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

func guardedSyncDir(dir string) error { return nil }
