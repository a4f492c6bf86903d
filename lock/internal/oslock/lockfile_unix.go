//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package oslock

//lint:file-ignore SA1019 unix.SYS_FLOCK is deprecated on macOS in favour of libSystem's wrappers; flock keeps the raw call, which saves the scheduler's bookkeeping on every acquisition (see tryLockFile)

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"

	"golang.org/x/sys/unix"
)

var errWouldBlock = unix.EWOULDBLOCK

// maxOpens bounds how often Open opens a path again whose file was
// removed while it was being opened: a path that never holds still is
// someone attacking the lock directory, and an error is better than a
// spin.
const maxOpens = 100

// fileMode is the mode of lock and holder files, whatever the umask:
// every local user may open them, so that a privileged service and an
// unprivileged desktop program can share the lock.
const fileMode = 0o666

// A file can be removed or renamed while open.
const openPinsPath = false

// The file is opened without O_CREAT first and created with O_EXCL only
// if it is missing: Linux's protected_regular setting refuses O_CREAT
// on an existing file in a sticky directory that the caller does not
// own, which is exactly how a service and a desktop program share one.
//
// A file removed between the open and the check (a cleaner, or a
// rename over it) has no links: it is not unsafe, only gone, so the
// path is opened again, a bounded number of times.
func openFile(path string, create bool) (*os.File, error) {
	for i := 0; ; i++ {
		f, err := openFileOnce(path, create)
		if !errors.Is(err, errUnlinked) {
			return f, err
		}
		if i == maxOpens {
			return nil, &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w: removed or replaced %d times while it was being opened", ErrUnsafePath, i+1)}
		}
	}
}

// errUnlinked is openFileOnce's error for a file that was removed
// while it was being opened.
var errUnlinked = errors.New("removed while being opened")

func openFileOnce(path string, create bool) (*os.File, error) {
	fd, err := openPath(path, create)
	if err != nil {
		return nil, err
	}
	if err := checkOpened(fd, path); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// openPath opens path without following a symbolic link, creating it
// with the shared mode if create is set, and names what it found there
// if that is not a file to lock.
func openPath(path string, create bool) (int, error) {
	flags := unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY
	if create {
		flags |= unix.O_RDWR
	} else {
		flags |= unix.O_RDONLY
	}
	fd, err := openRetry(path, flags, 0)
	if errors.Is(err, unix.ENOENT) && create {
		fd, err = openRetry(path, flags|unix.O_CREAT|unix.O_EXCL, fileMode)
		if err == nil {
			if err = unix.Fchmod(fd, fileMode); err != nil {
				unix.Close(fd)
				return -1, &fs.PathError{Op: "chmod", Path: path, Err: err}
			}
		} else if errors.Is(err, unix.EEXIST) {
			fd, err = openRetry(path, flags, 0)
		}
	}
	if err != nil {
		switch {
		case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EMLINK):
			err = fmt.Errorf("%w: is a symbolic link", ErrUnsafePath)
		case errors.Is(err, unix.EISDIR):
			err = fmt.Errorf("%w: is a directory", ErrUnsafePath)
		case errors.Is(err, unix.EACCES):
			if serr := squatted(path); serr != nil {
				err = serr
			}
		}
		return -1, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

// checkOpened checks that the file open as fd is a regular file with
// one link, repairs its mode if it may (see repairMode), and puts it in
// blocking mode. It returns errUnlinked for a file removed since open.
func checkOpened(fd int, path string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	var err error
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		err = fmt.Errorf("%w: not a regular file", ErrUnsafePath)
	case st.Nlink == 0:
		return errUnlinked
	case st.Nlink != 1:
		err = fmt.Errorf("%w: has %d hard links", ErrUnsafePath, st.Nlink)
	}
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	if err := repairMode(fd, &st); err != nil {
		return &fs.PathError{Op: "chmod", Path: path, Err: err}
	}
	// O_NONBLOCK only kept open from blocking on a planted FIFO; a
	// regular file is used in blocking mode (and os.File.Fd is then
	// free of system calls).
	if err := unix.SetNonblock(fd, false); err != nil {
		return &fs.PathError{Op: "fcntl", Path: path, Err: err}
	}
	return nil
}

// repairMode gives a lock or holder file the shared mode again if the
// caller may: root, or the file's owner. A file another user planted
// with a mode that shuts others out (0600, say) would otherwise lock
// every third user out for good; one created by a program with its
// umask (flock(1)) would do the same. A caller who may not change it
// uses the file as it is, if it could open it (see squatted otherwise).
func repairMode(fd int, st *unix.Stat_t) error {
	if st.Mode&0o7777 == fileMode {
		return nil
	}
	if euid := uint32(os.Geteuid()); euid != 0 && euid != st.Uid {
		return nil
	}
	return unix.Fchmod(fd, fileMode)
}

// squatted explains an EACCES opening path: a file owned by another
// user whose mode shuts others out. Only root or that user can repair
// it (by using the lock, see repairMode, or with chmod 0666). It
// returns nil for any other cause.
func squatted(path string) error {
	var st unix.Stat_t
	if unix.Lstat(path, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Uid == uint32(os.Geteuid()) {
		return nil
	}
	owner := fmt.Sprintf("uid %d", st.Uid)
	if u, err := user.LookupId(strconv.Itoa(int(st.Uid))); err == nil {
		owner += " (" + u.Username + ")"
	}
	return fmt.Errorf("%w: owned by %s with mode %#04o, which shuts other users out; root or its owner can repair it by using the lock, or an operator with chmod 0666: %w",
		ErrUnsafePath, owner, st.Mode&0o7777, unix.EACCES)
}

func openRetry(path string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Open(path, flags, mode)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// tryLockFile and unlockFile use RawSyscall: neither call can block
// (LOCK_NB, LOCK_UN), so the runtime need not be told about them, which
// saves its system-call bookkeeping on every acquisition.
func tryLockFile(f *os.File) error {
	return flock(f, unix.LOCK_EX|unix.LOCK_NB)
}

// tryLockFileContext is tryLockFile: a non-blocking flock answers at
// once, even on a network file system, so there is nothing to withdraw.
func tryLockFileContext(_ context.Context, f *os.File) error {
	return tryLockFile(f)
}

func unlockFile(f *os.File) error {
	return flock(f, unix.LOCK_UN)
}

func flock(f *os.File, how int) error {
	for {
		_, _, e := unix.RawSyscall(unix.SYS_FLOCK, f.Fd(), uintptr(how), 0)
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return e
	}
}
