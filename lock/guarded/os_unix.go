//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package guarded

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"

	"github.com/agentlock/agentlock/lock"
)

// guardedMode is the mode of a guarded file whatever the umask: see the
// package documentation.
const guardedMode = 0o644

// guardedOpenRead opens a guarded file for reading without following a
// symbolic link, close-on-exec.
func guardedOpenRead(path string) (*os.File, error) {
	fd, err := openNoEINTR(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EMLINK) {
			err = fmt.Errorf("%w: is a symbolic link", lock.ErrUnsafePath)
		}
		return nil, &fs.PathError{Op: "read guarded", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// guardedCreateTemp creates the temporary file path exclusively, with
// guardedMode whatever the umask. An existing file is an error matching
// fs.ErrExist.
func guardedCreateTemp(path string) (*os.File, error) {
	fd, err := openNoEINTR(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY, guardedMode)
	if err != nil {
		return nil, &fs.PathError{Op: "create", Path: path, Err: err}
	}
	if err := unix.Fchmod(fd, guardedMode); err != nil {
		unix.Close(fd)
		unix.Unlink(path)
		return nil, &fs.PathError{Op: "chmod", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// guardedRename renames oldpath over newpath: rename(2) replaces the
// target atomically even while readers have it open.
func guardedRename(oldpath, newpath string) error {
	return os.Rename(oldpath, newpath)
}

// guardedSyncDir fsyncs the directory dir, so that a rename in it
// survives a crash. File systems that cannot sync a directory (EINVAL,
// ENOTSUP) are taken to make renames durable by other means.
func guardedSyncDir(dir string) error {
	fd, err := openNoEINTR(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return &fs.PathError{Op: "open directory", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	for {
		err = unix.Fsync(fd)
		if err != unix.EINTR {
			break
		}
	}
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTSUP) {
		return nil
	}
	if err != nil {
		return &fs.PathError{Op: "fsync", Path: dir, Err: err}
	}
	return nil
}

// openNoEINTR is open(2), again after EINTR (a signal during the open
// of a FIFO or a slow file system).
func openNoEINTR(path string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Open(path, flags, mode)
		if err != unix.EINTR {
			return fd, err
		}
	}
}
