package oslock

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"github.com/agentlock/agentlock/internal/record"
	"golang.org/x/sys/windows"
)

var errWouldBlock error = windows.ERROR_LOCK_VIOLATION

// openFile's handles share no delete access (see below).
const openPinsPath = true

// openFile does not follow junctions either. The file is opened for
// overlapped I/O, which waitLockFile needs. A file created here gets
// the permissions its directory passes on (see dirSDDL for the default
// directory).
//
// Other processes may read and write the file while it is open, but not
// delete or rename it (no FILE_SHARE_DELETE): since every process keeps
// its lock and holder files open for its life, nobody can move a lock
// file away from under its holder and lock a new one at the path. The
// access asked for is only what the lock and the page need (no
// FILE_WRITE_ATTRIBUTES, which dirSDDL does not grant).
//
// Like on Unix, an existing file is opened first and a missing one is
// created exclusively, so two processes creating it at once both end up
// with the same file.
func openFile(path string, create bool) (*os.File, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	access := uint32(windows.FILE_GENERIC_READ)
	if create {
		access |= windows.FILE_WRITE_DATA | windows.FILE_APPEND_DATA
	}
	open := func(disposition uint32) (windows.Handle, error) {
		return windows.CreateFile(p, access,
			windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE,
			nil, // not inheritable
			disposition,
			windows.FILE_ATTRIBUTE_NORMAL|windows.FILE_FLAG_OPEN_REPARSE_POINT|windows.FILE_FLAG_OVERLAPPED, 0)
	}
	h, err := open(windows.OPEN_EXISTING)
	if create && (err == windows.ERROR_FILE_NOT_FOUND) {
		h, err = open(windows.CREATE_NEW)
		if err == windows.ERROR_FILE_EXISTS || err == windows.ERROR_ALREADY_EXISTS {
			h, err = open(windows.OPEN_EXISTING)
		}
	}
	if err == windows.ERROR_ACCESS_DENIED {
		err = classifyDenied(p, err)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	var fi windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &fi); err != nil {
		windows.CloseHandle(h)
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	switch {
	case fi.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0:
		err = fmt.Errorf("%w: is a symbolic link or reparse point", ErrUnsafePath)
	case fi.FileAttributes&windows.FILE_ATTRIBUTE_DIRECTORY != 0:
		err = fmt.Errorf("%w: not a regular file", ErrUnsafePath)
	case fi.NumberOfLinks != 1:
		err = fmt.Errorf("%w: has %d hard links", ErrUnsafePath, fi.NumberOfLinks)
	}
	if err == nil {
		if t, terr := windows.GetFileType(h); terr != nil || t != windows.FILE_TYPE_DISK {
			err = fmt.Errorf("%w: not a regular file", ErrUnsafePath)
		}
	}
	if err != nil {
		windows.CloseHandle(h)
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(h), path), nil
}

// classifyDenied tells why opening p was denied: CreateFile reports a
// directory (or a reparse point to one) at the path as
// ERROR_ACCESS_DENIED too. It looks at the path's attributes, which
// needs no access to the object itself, and returns an error matching
// ErrUnsafePath for a directory or reparse point, else err.
func classifyDenied(p *uint16, err error) error {
	var fa windows.Win32FileAttributeData
	if windows.GetFileAttributesEx(p, windows.GetFileExInfoStandard, (*byte)(unsafe.Pointer(&fa))) != nil {
		return err
	}
	switch {
	case fa.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0:
		return fmt.Errorf("%w: is a symbolic link or reparse point", ErrUnsafePath)
	case fa.FileAttributes&windows.FILE_ATTRIBUTE_DIRECTORY != 0:
		return fmt.Errorf("%w: is a directory", ErrUnsafePath)
	}
	return err
}

// The byte range locked in the lock file: all of it, as
// cmd/go/internal/lockedfile does. Nothing reads or writes the lock
// file, so the mandatory nature of the lock affects nobody.
const (
	lockLow  = ^uint32(0)
	lockHigh = ^uint32(0)
)

// events is a small cache of manual-reset events for OVERLAPPED
// structures, so a lock attempt does not cost two extra system calls.
var events = make(chan windows.Handle, 8)

func getEvent() (windows.Handle, error) {
	select {
	case e := <-events:
		return e, nil
	default:
		return windows.CreateEvent(nil, 1, 0, nil)
	}
}

// putEvent returns e to the cache, which holds only events that are not
// set. An event whose request failed at once (a busy lock) was never
// set: the system sets it only on completion of a request that started
// (granted at once, or pending), so it needs no ResetEvent, which would
// be a second system call on the busy path.
func putEvent(e windows.Handle, set bool) {
	if set {
		windows.ResetEvent(e)
	}
	select {
	case events <- e:
	default:
		windows.CloseHandle(e)
	}
}

// A lockOp is one LockFileEx request on the overlapped handle of a lock
// file.
type lockOp struct {
	h      windows.Handle // the file's handle, read once
	ol     *windows.Overlapped
	ev     windows.Handle
	pin    runtime.Pinner
	leaked bool // the kernel may still own ol: never reuse it
	failed bool // LockFileEx failed at once: ev was never set
}

// startLock starts LockFileEx. The OVERLAPPED is pinned (the kernel
// writes it when the request completes, possibly after startLock
// returns) and its event has the low bit set, so that the completion is
// not also queued to the runtime's I/O completion port.
//
// The calling goroutine is locked to its OS thread until done: the
// handle is not associated with the runtime's completion port (the
// first os.File.Fd detaches it, and the event's low bit keeps
// completions off the port anyway), so Windows queues the pending
// request to the issuing thread and cancels it if that thread exits,
// which the runtime does to a thread whose locked goroutine exits.
//
// It returns a nil op only if it could not start the request.
func startLock(f *os.File, flags uint32) (*lockOp, error) {
	ev, err := getEvent()
	if err != nil {
		return nil, os.NewSyscallError("CreateEvent", err)
	}
	return startLockEvent(windows.Handle(f.Fd()), flags, ev)
}

// startLockHandle is startLock for a handle.
func startLockHandle(h windows.Handle, flags uint32) (*lockOp, error) {
	ev, err := getEvent()
	if err != nil {
		return nil, os.NewSyscallError("CreateEvent", err)
	}
	return startLockEvent(h, flags, ev)
}

func startLockEvent(h windows.Handle, flags uint32, ev windows.Handle) (*lockOp, error) {
	runtime.LockOSThread()
	op := &lockOp{h: h, ol: new(windows.Overlapped), ev: ev}
	op.pin.Pin(op.ol)
	op.ol.HEvent = ev | 1
	err := windows.LockFileEx(op.h, flags, 0, lockLow, lockHigh, op.ol)
	op.failed = err != nil && err != windows.ERROR_IO_PENDING
	return op, err
}

// wait waits for a pending request to complete, or for cancel to be set
// (then it returns ctx.Err()). A request that did not complete is
// withdrawn before wait returns, and if it was granted meanwhile it is
// released, so an error always means the lock is not held.
func (op *lockOp) wait(ctx context.Context, cancel windows.Handle) error {
	r, werr := windows.WaitForMultipleObjects([]windows.Handle{op.ev, cancel}, false, windows.INFINITE)
	if r == windows.WAIT_OBJECT_0 {
		return op.outcome()
	}
	if err := op.withdraw(); err != nil {
		return err
	}
	if r != windows.WAIT_OBJECT_0+1 {
		return os.NewSyscallError("WaitForMultipleObjects", werr)
	}
	return ctx.Err()
}

// withdraw cancels a pending request and waits until the kernel has
// finished with it; a request granted just before the cancellation took
// effect is released. If the wait itself fails, the OVERLAPPED and its
// event are never reused (the kernel may still write them).
func (op *lockOp) withdraw() error {
	windows.CancelIoEx(op.h, op.ol)
	if _, err := windows.WaitForSingleObject(op.ev, windows.INFINITE); err != nil {
		op.leak()
		return os.NewSyscallError("WaitForSingleObject", err)
	}
	if op.outcome() == nil {
		unlockHandle(op.h)
	}
	return nil
}

// outcome returns the result of a completed request.
func (op *lockOp) outcome() error {
	var n uint32
	return windows.GetOverlappedResult(op.h, op.ol, &n, false)
}

// leakedOps keeps the lockOps whose OVERLAPPED the kernel may still own
// reachable and pinned for the life of the process.
var leakedOps struct {
	sync.Mutex
	ops []*lockOp
}

func (op *lockOp) leak() {
	op.leaked = true
	leakedOps.Lock()
	leakedOps.ops = append(leakedOps.ops, op)
	leakedOps.Unlock()
}

func (op *lockOp) done() {
	if !op.leaked {
		op.pin.Unpin()
		putEvent(op.ev, !op.failed)
	}
	runtime.UnlockOSThread()
}

func tryLockFile(f *os.File) error {
	return tryLockFileContext(context.Background(), f)
}

// tryLockFileContext is tryLockFile for a caller with a context. A
// request that must not wait completes at once on a local disk, but on
// a network share the server answers it, which may take as long as the
// server is unresponsive: then the request is withdrawn when ctx ends.
func tryLockFileContext(ctx context.Context, f *os.File) error {
	op, err := startLock(f, windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY)
	return awaitLock(ctx, op, err)
}

// awaitLock finishes a request that startLock made (op, err): if it is
// pending, it waits for it to complete or ctx to end (see
// waitLockFile); otherwise it returns its result.
func awaitLock(ctx context.Context, op *lockOp, err error) error {
	if op == nil {
		return err
	}
	defer op.done()
	if err != windows.ERROR_IO_PENDING {
		return err // granted at once (nil), or failed
	}
	cancel, stop, err := cancelEvent(ctx)
	if err != nil {
		// The request is pending: take it back before failing.
		if werr := op.withdraw(); werr != nil {
			return werr
		}
		return err
	}
	defer stop()
	return op.wait(ctx, cancel)
}

func unlockFile(f *os.File) error {
	return unlockHandle(windows.Handle(f.Fd()))
}

func unlockHandle(h windows.Handle) error {
	ol := new(windows.Overlapped)
	return windows.UnlockFileEx(h, 0, lockLow, lockHigh, ol)
}

// waitLockFile issues one overlapped LockFileEx, which the kernel queues behind
// the holder and completes when the lock is granted (on release, or
// when the holder's handle is closed because its process died), and
// waits for either that completion or a cancel event that
// context.AfterFunc sets. On cancellation it cancels the request with
// CancelIoEx and waits for the request to finish; if the lock was
// granted in that race, it unlocks before returning ctx.Err(), so
// nothing holds the lock after waitLockFile returns an error.
//
// The page's waiters flag is not needed (the kernel wakes waiters, see wakeWaiters)
// and is ignored.
//
// Wine (8.0 at least) does not implement LockFileEx waits on
// overlapped handles: the request stays pending forever. Under Wine
// waitLockFile therefore makes non-blocking attempts and sleeps between
// them on a named event that releasers set, as the Unix versions do
// with a futex or kqueue (see wineWaitLockFile), so the test suite,
// which runs under Wine in CI, still exercises everything else in this
// file.
func waitLockFile(ctx context.Context, f *os.File, page *record.Page, l Waiter) error {
	if onWine() {
		return wineWaitLockFile(ctx, f, page, l)
	}
	op, err := startLock(f, windows.LOCKFILE_EXCLUSIVE_LOCK)
	return awaitLock(ctx, op, err)
}

// cancelEvent returns a manual-reset event that is set when ctx is done,
// for WaitForMultipleObjects, and a function that stops watching ctx and
// closes the event (not before a running AfterFunc has set it).
func cancelEvent(ctx context.Context) (ev windows.Handle, done func(), err error) {
	ev, err = windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		return 0, nil, os.NewSyscallError("CreateEvent", err)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		windows.SetEvent(ev)
		close(fired)
	})
	return ev, func() {
		if !stop() {
			<-fired
		}
		windows.CloseHandle(ev)
	}, nil
}
