package oslock

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/windows"
)

// dirSDDL is the security descriptor of the default directory when this
// package creates it (protected: nothing inherited from ProgramData):
//
//   - SYSTEM and Administrators: full control, inherited by files;
//   - Authenticated Users, on the directory itself: list, traverse, read
//     attributes and create files (0x1200ab), but neither delete other
//     users' files (no FILE_DELETE_CHILD) nor create subdirectories;
//   - Authenticated Users, on files created in it (inherit only): read,
//     write and append data (FILE_GENERIC_READ|FILE_WRITE_DATA|
//     FILE_APPEND_DATA, 0x12008f), but neither DELETE nor
//     FILE_WRITE_ATTRIBUTES, which would let anyone set a file read-only
//     or make a hard link to it (both of which lock everyone out);
//   - OWNER RIGHTS, the same on the directory and on its files: without
//     this entry the owner of an object may always change its DACL, so
//     whoever created the directory or a file in it could grant itself
//     the right to delete or replace it.
//
// So a service and any logged-on user share the lock and holder files,
// whichever of them creates the directory or a file first, and nobody
// but SYSTEM and Administrators can delete or replace them.
const dirSDDL = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;;0x1200ab;;;AU)(A;OIIO;0x12008f;;;AU)(A;;0x1200ab;;;OW)(A;OIIO;0x12008f;;;OW)"

// defaultDir is %ProgramData%\agentlock, created on first use with
// dirSDDL. ProgramData is the machine-wide directory that services and
// desktop programs both see.
func defaultDir() (string, error) {
	pd, err := windows.KnownFolderPath(windows.FOLDERID_ProgramData, 0)
	if err != nil || pd == "" {
		pd = os.Getenv("ProgramData")
	}
	if pd == "" {
		return "", &fs.PathError{Op: "lock", Path: `%ProgramData%`, Err: fmt.Errorf("cannot find the ProgramData folder: %v", err)}
	}
	dir := filepath.Join(pd, "agentlock")
	if err := makeSharedDir(dir); err != nil {
		return "", err
	}
	return dir, nil
}

// makeSharedDir creates dir with dirSDDL, unless it exists.
func makeSharedDir(dir string) error {
	sa, err := securityAttributes(dirSDDL)
	if err != nil {
		return &fs.PathError{Op: "lock", Path: dir, Err: err}
	}
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return &fs.PathError{Op: "lock", Path: dir, Err: err}
	}
	if err := windows.CreateDirectory(p, sa); err != nil && err != windows.ERROR_ALREADY_EXISTS {
		return &fs.PathError{Op: "mkdir", Path: dir, Err: err}
	}
	return nil
}

// checkDir checks that dir is a directory (not a symbolic link,
// junction or other reparse point) in which no untrusted user can
// delete, rename or replace lock files (see checkSecurity). The rule is
// the same for the default directory, which a user could otherwise
// create in ProgramData before the service does.
func checkDir(dir string, isDefault bool) error {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return &fs.PathError{Op: "lock", Path: dir, Err: err}
	}
	h, err := windows.CreateFile(p, windows.READ_CONTROL|windows.FILE_READ_ATTRIBUTES,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, nil,
		windows.OPEN_EXISTING, windows.FILE_FLAG_BACKUP_SEMANTICS|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return &fs.PathError{Op: "lock", Path: dir, Err: err}
	}
	defer windows.CloseHandle(h)
	var fi windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &fi); err != nil {
		return &fs.PathError{Op: "lock", Path: dir, Err: err}
	}
	switch {
	case fi.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0:
		err = fmt.Errorf("%w: lock directory is a symbolic link or junction", ErrUnsafePath)
	case fi.FileAttributes&windows.FILE_ATTRIBUTE_DIRECTORY == 0:
		err = fmt.Errorf("lock directory is not a directory: %w", windows.ERROR_DIRECTORY)
	default:
		err = checkSecurity(h, windows.SE_FILE_OBJECT, "lock directory", true)
	}
	if err != nil {
		return &fs.PathError{Op: "lock", Path: dir, Err: err}
	}
	return nil
}
