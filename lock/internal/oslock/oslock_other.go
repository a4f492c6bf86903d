//go:build !darwin && !dragonfly && !freebsd && !linux && !netbsd && !openbsd && !windows

package oslock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"

	"github.com/agentlock/agentlock/internal/record"
)

// The file backend needs flock(2) (or LockFileEx) and shared memory.
// Solaris, illumos and AIX have only fcntl record locks, which a process
// loses when it closes any descriptor of the file, and js, wasip1 and
// plan9 have no file locks at all: on these systems New, NewFileBackend
// and guarded.Open fail with an error matching errors.ErrUnsupported, and
// nothing is created.

var errWouldBlock = errors.New("would block")

var errNoFileLocks = fmt.Errorf("lock: no flock(2) on %s: %w", runtime.GOOS, errors.ErrUnsupported)

func defaultDir() (string, error) {
	return "", &fs.PathError{Op: "lock", Path: "", Err: errNoFileLocks}
}

func makeSharedDir(dir string) error {
	return &fs.PathError{Op: "mkdir", Path: dir, Err: errors.ErrUnsupported}
}

func checkDir(dir string, isDefault bool) error {
	return &fs.PathError{Op: "lock", Path: dir, Err: errNoFileLocks}
}

// A file can be removed or renamed while open.
const openPinsPath = false

func openFile(path string, create bool) (*os.File, error) {
	return nil, &fs.PathError{Op: "open", Path: path, Err: errNoFileLocks}
}

func tryLockFile(f *os.File) error { return errNoFileLocks }

func tryLockFileContext(_ context.Context, f *os.File) error { return errNoFileLocks }

func unlockFile(f *os.File) error { return errNoFileLocks }

func waitLockFile(ctx context.Context, f *os.File, page *record.Page, l Waiter) error {
	return errNoFileLocks
}

func wakeWaiters(f *os.File, page *record.Page) bool { return true }

func mapPage(f *os.File, writable bool) ([]byte, error) { return nil, errNoFileLocks }

// restorePage cannot restore anything: no page is ever mapped here.
func restorePage(f *os.File) error { return errors.ErrUnsupported }

// idOf and idAt have nothing to go by here (the file backend is not
// supported): no file is ever the file at a path.
func idOf(f *os.File) (id FileID, ok bool) { return FileID{}, false }

func idAt(path string) (id FileID, ok bool) { return FileID{}, false }
