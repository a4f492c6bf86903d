//go:build !unix && !windows

package lock

import (
	"context"
	"errors"
	"io/fs"
	"os"

	"github.com/agentlock/agentlock/internal/record"
)

// The file backend needs file locks and shared memory, which this
// platform does not offer through Go's syscall packages: every
// operation fails with an error matching errors.ErrUnsupported.

var errWouldBlock = errors.New("would block")

func defaultDir() (string, error) {
	return "", &fs.PathError{Op: "lock", Path: "", Err: errors.ErrUnsupported}
}

func checkDir(dir string, isDefault bool) error {
	return &fs.PathError{Op: "lock", Path: dir, Err: errors.ErrUnsupported}
}

func openFile(path string, create bool) (*os.File, error) {
	return nil, &fs.PathError{Op: "open", Path: path, Err: errors.ErrUnsupported}
}

func tryLockFile(f *os.File) error { return errors.ErrUnsupported }

func unlockFile(f *os.File) error { return errors.ErrUnsupported }

func waitLockFile(ctx context.Context, f *os.File, page *record.Page) error {
	return errors.ErrUnsupported
}

func wakeWaiters(f *os.File, page *record.Page) bool { return true }

func mapPage(f *os.File, writable bool) ([]byte, error) { return nil, errors.ErrUnsupported }
