//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package oslock

import (
	"io/fs"
	"os"

	"golang.org/x/sys/unix"

	"github.com/agentlock/agentlock/internal/record"
)

// mapPage maps the holder page of f. A writable mapping first makes
// sure the file's page has blocks (allocatePage): a sparse page on a
// full file system would fault at the first store instead of failing
// here with ENOSPC. A read-only view of a file shorter than the page is
// reported as ErrShortPage: nobody has published anything, or someone
// truncated the file.
func mapPage(f *os.File, writable bool) ([]byte, error) {
	prot := unix.PROT_READ
	if writable {
		if err := allocatePage(f); err != nil {
			return nil, &fs.PathError{Op: "allocate", Path: f.Name(), Err: err}
		}
		prot |= unix.PROT_WRITE
	} else {
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil {
			return nil, &fs.PathError{Op: "stat", Path: f.Name(), Err: err}
		}
		if st.Size < record.PageSize {
			return nil, &fs.PathError{Op: "map", Path: f.Name(), Err: ErrShortPage}
		}
	}
	b, err := unix.Mmap(int(f.Fd()), 0, record.PageSize, prot, unix.MAP_SHARED)
	if err != nil {
		return nil, &fs.PathError{Op: "mmap", Path: f.Name(), Err: err}
	}
	return b, nil
}

// restorePage gives a holder file that shrank under its mapping its
// page back (zeros: the record and token it held are lost; see
// holderFile.open for how they come back). A file that has its size
// again (another process restored it first) is left as it is; if the
// fault had another cause, the caller's retry faults again and reports
// it.
func restorePage(f *os.File) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if st.Size >= record.PageSize {
		return nil
	}
	return allocatePage(f)
}

// writeZeros allocates the part of the page beyond the file's end by
// writing zeros there, for file systems without fallocate: it never
// writes over bytes that exist, which other processes may be using.
func writeZeros(f *os.File) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if st.Size >= record.PageSize {
		return nil
	}
	zeros := make([]byte, record.PageSize-st.Size)
	_, err := f.WriteAt(zeros, st.Size)
	return err
}
