//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package oslock

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// On Unix a file's identity is its device and inode.

func idOf(f *os.File) (id FileID, ok bool) {
	fi, err := f.Stat()
	if err != nil {
		return FileID{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Nlink < 1 {
		return FileID{}, false
	}
	return FileID{uint64(st.Dev), uint64(st.Ino)}, true
}

// idAt uses lstat: a link put in the file's place is not the file.
func idAt(path string) (id FileID, ok bool) {
	var st unix.Stat_t
	if unix.Lstat(path, &st) != nil {
		return FileID{}, false
	}
	return FileID{uint64(st.Dev), uint64(st.Ino)}, true
}
