package oslock

import (
	"errors"
	"io/fs"
	"os"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/agentlock/agentlock/internal/record"
)

// mapPage maps the holder page of f. A writable mapping grows the file
// to the page size first (CreateFileMapping does that); a read-only
// view of a file that has not been grown yet is reported as
// fs.ErrNotExist: nobody has published anything. The view stays valid
// after f and the mapping handle are closed (the view keeps the mapping
// object alive) and is never unmapped.
func mapPage(f *os.File, writable bool) ([]byte, error) {
	h := windows.Handle(f.Fd())
	var fi windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &fi); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: f.Name(), Err: err}
	}
	size := int64(fi.FileSizeHigh)<<32 | int64(fi.FileSizeLow)
	if size < record.PageSize && !writable {
		return nil, &fs.PathError{Op: "map", Path: f.Name(), Err: fs.ErrNotExist}
	}
	prot, access := uint32(windows.PAGE_READONLY), uint32(windows.FILE_MAP_READ)
	if writable {
		prot, access = windows.PAGE_READWRITE, windows.FILE_MAP_READ|windows.FILE_MAP_WRITE
	}
	m, err := windows.CreateFileMapping(h, nil, prot, 0, record.PageSize, nil)
	if err != nil {
		return nil, &fs.PathError{Op: "CreateFileMapping", Path: f.Name(), Err: err}
	}
	defer windows.CloseHandle(m)
	addr, err := windows.MapViewOfFile(m, access, 0, 0, record.PageSize)
	if err != nil {
		return nil, &fs.PathError{Op: "MapViewOfFile", Path: f.Name(), Err: err}
	}
	// The view is not Go memory, so converting its address is safe.
	return unsafe.Slice((*byte)(unsafe.Add(nil, addr)), record.PageSize), nil
}

// restorePage cannot restore anything here: Windows refuses to truncate
// a file that is mapped, so a holder page never shrinks under a mapping.
func restorePage(f *os.File) error { return errors.ErrUnsupported }
