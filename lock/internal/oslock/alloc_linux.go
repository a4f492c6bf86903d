package oslock

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/agentlock/agentlock/internal/record"
)

// allocatePage gives the holder file's page real blocks (fallocate),
// extending the file to the page if it is shorter, without touching
// bytes that exist. On a full file system this is ENOSPC now, rather
// than SIGBUS at the first store into a sparse page.
func allocatePage(f *os.File) error {
	for {
		err := unix.Fallocate(int(f.Fd()), 0, 0, record.PageSize)
		switch err {
		case nil:
			return nil
		case unix.EINTR:
			continue
		case unix.EOPNOTSUPP, unix.ENOSYS:
			return writeZeros(f)
		}
		return err
	}
}
