//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package lock

//lint:file-ignore SA1019 unix.SYS_FLOCK is deprecated on macOS in favour of libSystem's wrappers; flock keeps the raw call, which saves the scheduler's bookkeeping on every acquisition (see tryLockFile)

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"

	"github.com/agentlock/agentlock/internal/record"
)

var errWouldBlock = unix.EWOULDBLOCK

// fileMode is the mode of lock and holder files, whatever the umask:
// every local user may open them, so that a privileged service and an
// unprivileged desktop program can share the lock.
const fileMode = 0o666

// openFile opens (and with create, creates) a lock or holder file
// without following symbolic links, close-on-exec, and checks that it
// is a regular file with a single link.
//
// The file is opened without O_CREAT first and created with O_EXCL only
// if it is missing: Linux's protected_regular setting refuses O_CREAT
// on an existing file in a sticky directory that the caller does not
// own, which is exactly how a service and a desktop program share one.
func openFile(path string, create bool) (*os.File, error) {
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
				return nil, &fs.PathError{Op: "chmod", Path: path, Err: err}
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
		}
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		err = fmt.Errorf("%w: not a regular file", ErrUnsafePath)
	case st.Nlink != 1:
		err = fmt.Errorf("%w: has %d hard links", ErrUnsafePath, st.Nlink)
	}
	if err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	// O_NONBLOCK only kept open from blocking on a planted FIFO; a
	// regular file is used in blocking mode (and os.File.Fd is then
	// free of system calls).
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "fcntl", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
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

// mapPage maps the holder page of f, growing the file to the page size
// first if writable. A read-only view of a file that has not been grown
// yet is reported as fs.ErrNotExist: nobody has published anything.
func mapPage(f *os.File, writable bool) ([]byte, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: f.Name(), Err: err}
	}
	prot := unix.PROT_READ
	if st.Size < record.PageSize {
		if !writable {
			return nil, &fs.PathError{Op: "map", Path: f.Name(), Err: fs.ErrNotExist}
		}
		if err := unix.Ftruncate(int(f.Fd()), record.PageSize); err != nil {
			return nil, &fs.PathError{Op: "truncate", Path: f.Name(), Err: err}
		}
	}
	if writable {
		prot |= unix.PROT_WRITE
	}
	b, err := unix.Mmap(int(f.Fd()), 0, record.PageSize, prot, unix.MAP_SHARED)
	if err != nil {
		return nil, &fs.PathError{Op: "mmap", Path: f.Name(), Err: err}
	}
	return b, nil
}

// checkDir checks that dir is a directory that no untrusted user can
// swap lock files in: not a symbolic link, owned by root or the
// caller, and if others or the group may write it, sticky. The default
// directory must be owned by root.
func checkDir(dir string, isDefault bool) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return &fs.PathError{Op: "lock", Path: dir, Err: err}
	}
	var err error
	uid := uint32(os.Geteuid())
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		err = fmt.Errorf("%w: lock directory is a symbolic link", ErrUnsafePath)
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		err = fmt.Errorf("lock directory is not a directory: %w", unix.ENOTDIR)
	case isDefault && st.Uid != 0:
		err = fmt.Errorf("%w: default lock directory is owned by uid %d, not root", ErrUnsafePath, st.Uid)
	case st.Uid != 0 && st.Uid != uid:
		err = fmt.Errorf("%w: lock directory is owned by uid %d, neither root nor the caller", ErrUnsafePath, st.Uid)
	case st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0:
		err = fmt.Errorf("%w: lock directory is writable by others and not sticky", ErrUnsafePath)
	}
	if err != nil {
		return &fs.PathError{Op: "lock", Path: dir, Err: err}
	}
	return nil
}
