//go:build !unix

package lock

import (
	"errors"
	"os"
)

// sameFile reports whether f is still the file at path.
func sameFile(f *os.File, path string) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	now, err := os.Lstat(path)
	return err == nil && os.SameFile(fi, now)
}

// restorePage cannot restore anything here: Windows refuses to truncate
// a file that is mapped, so a holder page never shrinks under a mapping.
func restorePage(f *os.File) error { return errors.ErrUnsupported }
