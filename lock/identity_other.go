//go:build !darwin && !dragonfly && !freebsd && !linux && !netbsd && !openbsd && !windows

package lock

import (
	"errors"
	"os"
)

// idOf and idAt have nothing to go by here (the file backend is not
// supported): no file is ever the file at a path.
func idOf(f *os.File) (id fileID, ok bool) { return fileID{}, false }

func idAt(path string) (id fileID, ok bool) { return fileID{}, false }

// restorePage cannot restore anything here: Windows refuses to truncate
// a file that is mapped, so a holder page never shrinks under a mapping.
func restorePage(f *os.File) error { return errors.ErrUnsupported }
