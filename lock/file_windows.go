package lock

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/agentlock/agentlock/internal/record"
)

var errWouldBlock error = windows.ERROR_LOCK_VIOLATION

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

// openFile opens (and with create, creates) a lock or holder file
// without following symbolic links or junctions, with a handle that
// child processes do not inherit, and checks that it is a regular file
// with a single link. The file is opened for overlapped I/O, which
// waitLockFile needs. A file created here gets the permissions its
// directory passes on (see dirSDDL for the default directory).
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

func putEvent(e windows.Handle) {
	windows.ResetEvent(e)
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
		putEvent(op.ev)
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
	if op == nil {
		return err
	}
	defer op.done()
	if err != windows.ERROR_IO_PENDING {
		return err
	}
	cancel, stop, err := cancelEvent(ctx)
	if err != nil {
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

// wakeWaiters wakes one process sleeping in the Wine wait of
// waitLockFile (see wineWaitLockFile), unless one is already awake. On
// Windows itself the kernel queues LockFileEx waiters and grants the
// lock to the next one, and nobody sets the waiters flag, so the caller
// (which only calls this when the flag was set) never gets here.
func wakeWaiters(f *os.File, page *record.Page) bool {
	if clear, err := page.MarkWoken(); err != nil || !clear {
		return err != nil
	}
	if ev := wakeEventFor(f); ev != 0 {
		windows.SetEvent(ev)
	}
	return true
}

// onWine reports whether this process runs under Wine, whose ntdll has
// wine_get_version.
var onWine = sync.OnceValue(func() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
})

// waitLockFile blocks until f is locked or ctx is done.
//
// It issues one overlapped LockFileEx, which the kernel queues behind
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
func waitLockFile(ctx context.Context, f *os.File, page *record.Page) error {
	if onWine() {
		return wineWaitLockFile(ctx, f, page)
	}
	op, err := startLock(f, windows.LOCKFILE_EXCLUSIVE_LOCK)
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

// wineFallbackWait bounds each sleep in wineWaitLockFile: a safety net
// for a lost wake-up (a waiter killed just after it was woken, an event
// that could not be opened).
const wineFallbackWait = 100 * time.Millisecond

// wineWaitLockFile is waitLockFile for Wine. Every attempt is
// non-blocking; between attempts the goroutine waits for one of:
//
//   - the lock's wake event (see wakeEventFor), an auto-reset event that
//     a releaser sets when the page's waiters flag says someone sleeps.
//     Before each attempt a sleeper sets the waiters flag and clears the
//     woken flag, as on Unix; since the event stays set until a wait
//     consumes it, a release between a failed attempt and the wait is
//     not missed, and a set event wakes a single sleeper (no thundering
//     herd), which sets the flag again so that the next release wakes
//     the next one;
//   - the holder's process, found through the holder record, which is
//     signalled when it exits: a dead holder cannot wake anyone, and the
//     system drops its lock as it dies (tried again after 1, 2, 4, 8 and
//     16 ms, in case the lock is dropped just after the process is
//     signalled);
//   - a cancel event set by context.AfterFunc;
//   - wineFallbackWait.
//
// A wait that ends with a wake-up is always followed by an attempt, so
// a wake-up is never lost with a cancelled waiter: the cancel event
// comes first in the wait, and a wait that reports it has not consumed
// the wake event.
func wineWaitLockFile(ctx context.Context, f *os.File, page *record.Page) error {
	cancel, done, err := cancelEvent(ctx)
	if err != nil {
		return err
	}
	defer done()
	wake := wakeEventFor(f)
	var holder holderProcess
	defer holder.close()
	for {
		if done, err := attempt(ctx, f, page); done {
			return err
		}
		hs := []windows.Handle{cancel}
		if wake != 0 {
			hs = append(hs, wake)
		}
		timeout := holder.update(page)
		if holder.h != 0 && !holder.exited {
			hs = append(hs, holder.h)
		}
		r, werr := windows.WaitForMultipleObjects(hs, false, uint32(timeout/time.Millisecond))
		switch {
		case r == windows.WAIT_OBJECT_0:
			return ctx.Err()
		case r == uint32(windows.WAIT_TIMEOUT):
		case r < windows.WAIT_OBJECT_0+uint32(len(hs)) && hs[r-windows.WAIT_OBJECT_0] == wake:
		case r < windows.WAIT_OBJECT_0+uint32(len(hs)):
			holder.exited = true
		default:
			return os.NewSyscallError("WaitForMultipleObjects", werr)
		}
	}
}

// holderProcess is the process of the holder that wineWaitLockFile
// waits for, with the retries after it exited.
type holderProcess struct {
	pid    int64
	start  uint64
	h      windows.Handle // 0: not known, not another process, or cannot be opened
	exited bool
	retry  time.Duration // next pause after the exit
}

// update follows the holder record to its current holder and returns
// how long to wait at most.
func (hp *holderProcess) update(page *record.Page) time.Duration {
	r, err := page.Load()
	if err != nil || r.State != record.Held || r.PID <= 0 || r.PID == int64(os.Getpid()) {
		hp.close()
		return wineFallbackWait
	}
	if r.PID != hp.pid || r.Start != hp.start {
		hp.close()
		hp.pid, hp.start = r.PID, r.Start
		h, err := windows.OpenProcess(windows.SYNCHRONIZE|windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(r.PID))
		if err == nil {
			var c, e, k, u windows.Filetime
			if windows.GetProcessTimes(h, &c, &e, &k, &u) == nil && r.Start != 0 &&
				uint64(c.HighDateTime)<<32|uint64(c.LowDateTime) != r.Start {
				windows.CloseHandle(h) // the pid was reused: the holder is gone
				hp.exited = true
			} else {
				hp.h = h
			}
		}
	}
	if !hp.exited {
		return wineFallbackWait
	}
	// Gone: its lock is about to be dropped, if it has not been yet.
	if hp.retry == 0 {
		hp.retry = time.Millisecond
	}
	d := hp.retry
	if hp.retry < wineFallbackWait {
		hp.retry *= 2
	}
	return min(d, wineFallbackWait)
}

func (hp *holderProcess) close() {
	if hp.h != 0 {
		windows.CloseHandle(hp.h)
	}
	*hp = holderProcess{}
}

// wakeEventSDDL is the security descriptor of a wake event this package
// creates: SYSTEM and Administrators get full access (EVENT_ALL_ACCESS);
// authenticated users may wait for it and set it
// (SYNCHRONIZE|EVENT_MODIFY_STATE), so a service and a desktop program
// wake each other.
const wakeEventSDDL = "D:(A;;0x1f0003;;;SY)(A;;0x1f0003;;;BA)(A;;0x100002;;;AU)"

// wakeEvents caches the wake event of each lock file (*os.File →
// *wakeEvent), for the life of the process like the file itself.
var wakeEvents sync.Map

type wakeEvent struct {
	once sync.Once
	h    windows.Handle // 0 if it could not be made
}

// wakeEventFor returns the wake event of the lock file f, creating or
// opening it on first use, or 0 if that failed (waiters then wake at
// wineFallbackWait). The event is named after the file's identity
// (volume serial number and file index), not its path, so that every
// process finds the same event however it spells the path:
// Global\agentlock.wake.VOLUME.INDEX, or Local\... where the global
// namespace is refused. Anyone may plant an object with that name; the
// worst it can do is set the event (a spurious wake-up: the waiter tries
// and sleeps again) or make it unusable (waiters fall back to polling at
// wineFallbackWait), never grant the lock.
func wakeEventFor(f *os.File) windows.Handle {
	v, ok := wakeEvents.Load(f)
	if !ok {
		v, _ = wakeEvents.LoadOrStore(f, new(wakeEvent))
	}
	e := v.(*wakeEvent)
	e.once.Do(func() { e.h = openWakeEvent(f) })
	return e.h
}

func openWakeEvent(f *os.File) windows.Handle {
	var fi windows.ByHandleFileInformation
	if windows.GetFileInformationByHandle(windows.Handle(f.Fd()), &fi) != nil {
		return 0
	}
	sa, err := securityAttributes(wakeEventSDDL)
	if err != nil {
		return 0
	}
	id := fmt.Sprintf("agentlock.wake.%08x.%08x%08x", fi.VolumeSerialNumber, fi.FileIndexHigh, fi.FileIndexLow)
	for _, ns := range []string{`Global\`, `Local\`} {
		p, err := windows.UTF16PtrFromString(ns + id)
		if err != nil {
			return 0
		}
		// Auto-reset, not set. An existing event is opened, with
		// ERROR_ALREADY_EXISTS and a valid handle.
		h, err := windows.CreateEventEx(sa, p, 0, windows.SYNCHRONIZE|windows.EVENT_MODIFY_STATE)
		if h != 0 && (err == nil || err == windows.ERROR_ALREADY_EXISTS) {
			return h
		}
	}
	return 0
}

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
