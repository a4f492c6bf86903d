//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package oslock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

func makeSharedDir(dir string) error {
	return &fs.PathError{Op: "mkdir", Path: dir, Err: errors.ErrUnsupported}
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
