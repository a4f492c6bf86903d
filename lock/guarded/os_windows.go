//go:build windows

package guarded

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// guardedRenameWait bounds the retries of a rename that another
// program's open handle blocks.
const guardedRenameWait = 2 * time.Second

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

// guardedRename renames oldpath over newpath. It uses
// SetFileInformationByHandle(FileRenameInfoEx) with
// FILE_RENAME_FLAG_POSIX_SEMANTICS (Windows 10 1709 and later, NTFS):
// that replaces a target that readers have open with FILE_SHARE_DELETE
// (see guardedOpenRead), and they keep reading the version they opened.
// MoveFileEx(MOVEFILE_REPLACE_EXISTING), which os.Rename uses, refuses
// to replace a file that is open at all, whatever its share mode; it is
// the fallback where the POSIX rename is not supported. A program that
// opened the target without FILE_SHARE_DELETE (any os.Open, many editors
// and virus scanners) makes either fail with ERROR_ACCESS_DENIED or
// ERROR_SHARING_VIOLATION until it closes the file, so those errors are
// retried with a growing pause for up to guardedRenameWait; then the
// last error is returned.
func guardedRename(oldpath, newpath string) error {
	deadline := time.Now().Add(guardedRenameWait)
	pause := time.Millisecond
	for {
		err := posixRename(oldpath, newpath)
		if errors.Is(err, errNoPosixRename) {
			err = os.Rename(oldpath, newpath)
		}
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

// errNoPosixRename: the system or file system has no POSIX rename.
var errNoPosixRename = errors.New("POSIX rename not supported")

// Flags of FILE_RENAME_INFO for FileRenameInfoEx.
const (
	fileRenameReplaceIfExists = 0x1
	fileRenamePosixSemantics  = 0x2
)

// posixRename renames oldpath (not following a link) over newpath with
// POSIX semantics, or returns errNoPosixRename.
func posixRename(oldpath, newpath string) error {
	op, err := windows.UTF16PtrFromString(oldpath)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	np, err := windows.UTF16FromString(newpath)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	h, err := windows.CreateFile(op, windows.DELETE|windows.SYNCHRONIZE,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE,
		nil, windows.OPEN_EXISTING, windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	defer windows.CloseHandle(h)
	// FILE_RENAME_INFO: Flags (a DWORD in a union with a BOOLEAN),
	// RootDirectory, FileNameLength in bytes, then the name (without
	// its terminating NUL, which the buffer has room for anyway).
	type renameInfo struct {
		Flags          uint32
		RootDirectory  windows.Handle
		FileNameLength uint32
		FileName       [1]uint16
	}
	n := len(np) - 1
	size := int(unsafe.Offsetof(renameInfo{}.FileName)) + 2*len(np)
	buf := make([]uint64, (size+7)/8) // 8-byte aligned
	info := (*renameInfo)(unsafe.Pointer(&buf[0]))
	info.Flags = fileRenameReplaceIfExists | fileRenamePosixSemantics
	info.FileNameLength = uint32(2 * n)
	copy(unsafe.Slice(&info.FileName[0], len(np)), np)
	err = windows.SetFileInformationByHandle(h, windows.FileRenameInfoEx, (*byte)(unsafe.Pointer(info)), uint32(size))
	switch err {
	case nil:
		return nil
	case windows.ERROR_INVALID_PARAMETER, windows.ERROR_NOT_SUPPORTED, windows.ERROR_INVALID_FUNCTION:
		// Before Windows 10 1709, or a file system without POSIX
		// semantics (FAT, some network file systems).
		return errNoPosixRename
	}
	return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
}

// guardedSyncDir does nothing: Windows cannot flush a directory, and
// NTFS journals the rename itself.
func guardedSyncDir(dir string) error { return nil }
