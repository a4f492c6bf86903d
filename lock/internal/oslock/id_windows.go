package oslock

import (
	"os"

	"golang.org/x/sys/windows"
)

// On Windows a file's identity is its volume serial number and file
// index.

func idOf(f *os.File) (id FileID, ok bool) {
	var fi windows.ByHandleFileInformation
	if windows.GetFileInformationByHandle(windows.Handle(f.Fd()), &fi) != nil || fi.NumberOfLinks < 1 {
		return FileID{}, false
	}
	return FileID{uint64(fi.VolumeSerialNumber), uint64(fi.FileIndexHigh)<<32 | uint64(fi.FileIndexLow)}, true
}

// idAt opens the path for no access and with every sharing mode (os.SameFile would open it
// with none, which a file held open by others can refuse), and not
// through a reparse point.
func idAt(path string) (id FileID, ok bool) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return FileID{}, false
	}
	h, err := windows.CreateFile(p, 0,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, nil,
		windows.OPEN_EXISTING, windows.FILE_FLAG_OPEN_REPARSE_POINT|windows.FILE_FLAG_BACKUP_SEMANTICS, 0)
	if err != nil {
		return FileID{}, false
	}
	defer windows.CloseHandle(h)
	var fi windows.ByHandleFileInformation
	if windows.GetFileInformationByHandle(h, &fi) != nil {
		return FileID{}, false
	}
	return FileID{uint64(fi.VolumeSerialNumber), uint64(fi.FileIndexHigh)<<32 | uint64(fi.FileIndexLow)}, true
}
