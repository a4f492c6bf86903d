//go:build windows

package lock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/windows"
)

// guardedOpenRead opens a guarded file for reading with
// FILE_SHARE_DELETE, so that a writer can rename a new version over it
// while it is open (os.Open leaves that share mode out, and a rename
// over a file opened that way fails). FILE_FLAG_OPEN_REPARSE_POINT opens
// a symbolic link or junction itself rather than its target; the caller
// then finds it is not a regular file. The handle is not inherited.
func guardedOpenRead(path string) (*os.File, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, &fs.PathError{Op: "read guarded", Path: path, Err: err}
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE,
		nil, windows.OPEN_EXISTING,
		windows.FILE_ATTRIBUTE_NORMAL|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "read guarded", Path: path, Err: err}
	}
	return os.NewFile(uintptr(h), path), nil
}

// guardedCreateTemp creates the temporary file path exclusively
// (CREATE_NEW, which also fails on an existing link). The file gets the
// directory's inherited ACL; Unix modes do not apply. An existing file
// is an error matching fs.ErrExist.
func guardedCreateTemp(path string) (*os.File, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, &fs.PathError{Op: "create", Path: path, Err: err}
	}
	h, err := windows.CreateFile(p, windows.GENERIC_WRITE,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_DELETE,
		nil, windows.CREATE_NEW,
		windows.FILE_ATTRIBUTE_NORMAL|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "create", Path: path, Err: err}
	}
	return os.NewFile(uintptr(h), path), nil
}

// guardedRename renames oldpath over newpath (MoveFileEx with
// MOVEFILE_REPLACE_EXISTING). A program that opened the target without
// FILE_SHARE_DELETE (any os.Open, many editors and virus scanners) makes
// the rename fail with ERROR_ACCESS_DENIED or ERROR_SHARING_VIOLATION
// until it closes the file, so those errors are retried with a growing
// pause for up to guardedRenameWait; then the last error is returned.
func guardedRename(oldpath, newpath string) error {
	deadline := time.Now().Add(guardedRenameWait)
	pause := time.Millisecond
	for {
		err := os.Rename(oldpath, newpath)
		if err == nil {
			return nil
		}
		if !errors.Is(err, windows.ERROR_ACCESS_DENIED) && !errors.Is(err, windows.ERROR_SHARING_VIOLATION) {
			return err
		}
		if time.Now().Add(pause).After(deadline) {
			return fmt.Errorf("%w (retried for %v: another program has the file open without FILE_SHARE_DELETE)", err, guardedRenameWait)
		}
		time.Sleep(pause)
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// guardedSyncDir does nothing: Windows cannot flush a directory, and
// NTFS journals the rename itself.
func guardedSyncDir(dir string) error { return nil }
