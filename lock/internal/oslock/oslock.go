// Package oslock holds the operating-system primitives under package
// lock's backends: opening, locking and unlocking lock files, waiting
// for a lock with a context and waking the waiters, mapping holder
// pages, the identity of files and the watch on them, the checks of
// lock directories and the default directory, the holder of a lock
// taken by another program, and Windows' named mutexes.
//
// The lock file is an exclusive flock(2) on Unix and a LockFileEx lock
// of the whole file on Windows. Systems with neither (Solaris, illumos,
// AIX, js, wasip1, plan9) get errors matching errors.ErrUnsupported from
// DefaultDir, CheckDir and Open, so nothing is ever created there.
//
// Errors about a path are *fs.PathError. This package imports nothing
// of package lock: what a wait needs to know of the lock it waits for
// comes through Waiter, and what a watch sees goes to a callback.
package oslock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync/atomic"

	"github.com/agentlock/agentlock/internal/record"
)

// ErrUnsafePath reports a lock directory or file that could let another
// user subvert the lock (package lock exports it).
var ErrUnsafePath = errors.New("unsafe path")

// ErrWouldBlock is the error of TryLock when another handle holds the
// lock (test it with errors.Is).
var ErrWouldBlock error = errWouldBlock

// ErrShortPage reports a holder file shorter than its page: nobody has
// published anything yet, or someone truncated the file.
var ErrShortPage = fmt.Errorf("%w: shorter than a holder page", fs.ErrNotExist)

// ErrMoved is the error of Wait when the Waiter says its files changed.
var ErrMoved = errors.New("lock file changed")

// A FileID identifies a file on its file system (Unix: device and
// inode; Windows: volume and file index).
type FileID struct{ Vol, File uint64 }

// IDOf returns the identity of the open file f, ok false if it has no
// links left (removed) or cannot be read.
func IDOf(f *os.File) (id FileID, ok bool) { return idOf(f) }

// IDAt returns the identity of the file at path, not following a
// symbolic link or reparse point (one put in its place is not the file).
func IDAt(path string) (id FileID, ok bool) {
	pathLookups.Add(1)
	return idAt(path)
}

// SameFile reports whether the open file f is still the file at path,
// and linked.
func SameFile(f *os.File, path string) bool {
	pathLookups.Add(1)
	id, ok := idOf(f)
	if !ok {
		return false
	}
	now, ok := idAt(path)
	return ok && now == id
}

// OpenPinsPath reports whether a file opened by Open stays the file at
// its path for as long as it is open. On Windows it does: Open shares
// no delete access, so nobody can remove or rename the file meanwhile,
// and checking that it is still at its path (IDAt, SameFile, which
// open the path there) can be skipped.
const OpenPinsPath = openPinsPath

// pathLookups counts the calls of IDAt and SameFile, for tests that
// check that a path is not looked up on every call.
var pathLookups atomic.Uint64

// PathLookups returns how many times IDAt and SameFile were called.
func PathLookups() uint64 { return pathLookups.Load() }

// DefaultDir returns the system's lock directory, shared by services
// and desktop programs (creating it on Windows).
func DefaultDir() (string, error) { return defaultDir() }

// MakeSharedDir creates dir, unless it exists, the way DefaultDir
// creates the default directory on Windows: with a DACL that lets every
// authenticated user create, read and write files in it but not delete
// them. Elsewhere the default directory is the system's, and
// MakeSharedDir fails with an error matching errors.ErrUnsupported.
func MakeSharedDir(dir string) error { return makeSharedDir(dir) }

// CheckDir checks that dir is a directory in which no untrusted user
// can delete, rename or replace lock files; isDefault applies the
// stricter rule of the default directory.
func CheckDir(dir string, isDefault bool) error { return checkDir(dir, isDefault) }

// Open opens (and with create, creates) a lock or holder file without
// following symbolic links, not inherited by child processes, and checks
// that it is a regular file with a single link.
func Open(path string, create bool) (*os.File, error) { return openFile(path, create) }

// TryLock makes one attempt to lock f exclusively, failing with an
// error matching ErrWouldBlock if another handle holds it.
func TryLock(f *os.File) error { return tryLockFile(f) }

// TryLockContext is TryLock for a first attempt, which on Windows may
// pend (a network share) and is then withdrawn when ctx ends.
func TryLockContext(ctx context.Context, f *os.File) error { return tryLockFileContext(ctx, f) }

// Unlock unlocks f.
func Unlock(f *os.File) error { return unlockFile(f) }

// A Waiter is what Wait needs to know of the lock it waits for.
type Waiter interface {
	// Moved reports that the lock's files changed since they were last
	// found at their paths: Wait returns ErrMoved.
	Moved() bool
	// Watched reports that a watch on the lock file reports holders'
	// deaths (see WaitState), so sleeps may be long.
	Watched() bool
	// HolderLive reports that page says the lock is held by a live
	// holder that publishes records, and so wakes sleepers when it
	// releases.
	HolderLive(page *record.Page) bool
	// WaitState is the state that the lock's waits share with its
	// watch.
	WaitState() *WaitState
}

// WaitState is what a lock's waits share with the watch on its file:
// the watch wakes sleepers after a close of the lock file by another
// process (a holder dying) only if there are any.
type WaitState struct {
	Sleepers  atomic.Int32 // goroutines sleeping in Wait
	LastClose atomic.Int64 // when the watch last saw another process close the lock file (Unix nanoseconds)
}

// Wait blocks until f is locked or ctx is done. page is the lock's
// holder page, whose wake words carry the wake-ups; w may be nil.
func Wait(ctx context.Context, f *os.File, page *record.Page, w Waiter) error {
	return waitLockFile(ctx, f, page, w)
}

// ReleaseWake wakes processes sleeping in Wait on f after a release, if
// the page says any are.
func ReleaseWake(f *os.File, page *record.Page) { releaseWake(f, page) }

// WakeSleepers wakes every process sleeping in Wait on page, where the
// wait sleeps on the page itself (Linux); each makes an attempt and
// sleeps again if the lock is still held.
func WakeSleepers(page *record.Page) { wakeSleepers(page) }

// MapPage maps the holder page of f, writable or read-only. A
// read-only view of a file shorter than the page fails with an error
// matching fs.ErrNotExist (ErrShortPage on Unix).
func MapPage(f *os.File, writable bool) ([]byte, error) { return mapPage(f, writable) }

// RestorePage gives a holder file that shrank under its mapping its
// page back; it fails with errors.ErrUnsupported where a mapped file
// cannot shrink (Windows).
func RestorePage(f *os.File) error { return restorePage(f) }

// LockHolder returns the process holding a lock (exclusive or shared)
// on the file at lockPath according to the system's table of file locks (only Linux
// has one, /proc/locks): how a holder that publishes no record is
// found. ok is false if no process holds such a lock or the table
// cannot be read; pid is 0 when the holder is in another pid namespace.
// marked reports that the same process also holds the file at markPath
// open with Mark, which tells a holder of this package caught between
// locking and publishing its record from a foreign one.
func LockHolder(lockPath, markPath string) (pid int, marked, ok bool) {
	return lockHolder(lockPath, markPath)
}

// Mark marks f, an open holder file, as open in this process for
// LockHolder to see, where the system has a table of file locks; it
// never blocks and never fails in a way that matters (an unmarked file
// makes LockHolder call its holder foreign, as for any other locker).
func Mark(f *os.File) { mark(f) }

// NamedMutexes reports whether the system has named kernel mutexes
// (Windows). Elsewhere the named-mutex backend locks a file instead,
// and OpenMutex fails with an error matching errors.ErrUnsupported.
const NamedMutexes = namedMutexes

// ErrMutexBusy is the error of Mutex.Lock without wait when the mutex
// is held.
var ErrMutexBusy = errors.New("mutex is held")

// A Mutex is a named kernel mutex, open for the life of the process.
type Mutex struct{ mutex }

// OpenMutex creates or opens the mutex named object (Global\… or
// Local\…) with a security descriptor that lets every authenticated
// user wait for it and release it. A mutex that someone else planted
// with permissions that could keep everyone waiting is refused with an
// error matching ErrUnsafePath.
func OpenMutex(object string) (*Mutex, error) { return openMutex(object) }

// SessionID returns the session the process runs in, which names the
// per-session mutexes (Local\…).
func SessionID() (uint64, error) { return sessionID() }

// A MutexOwner is the goroutine that owns one held mutex. Windows
// mutexes belong to a thread, and releasing one from any other thread
// fails, so the goroutine that takes the mutex is locked to its thread
// and is also the one that releases it.
type MutexOwner struct{ owner }

// Lock takes m on a new goroutine locked to its OS thread, and returns
// the owner that will release it. It reports whether the previous owner
// abandoned the mutex (died holding it). Without wait it makes one
// attempt (ErrMutexBusy if held); with wait it waits for the mutex or
// ctx, and a cancelled wait leaves nothing held.
func (m *Mutex) Lock(ctx context.Context, wait bool) (o *MutexOwner, abandoned bool, err error) {
	return m.lockOnThread(ctx, wait)
}

// Unlock has the owner release the mutex and waits until it has.
func (o *MutexOwner) Unlock() error { return o.unlock() }

// An Event is what a watch saw happen to a lock's files.
type Event uint8

const (
	// PathChanged: either file was removed, renamed, replaced or
	// linked (its links or name changed).
	PathChanged Event = 1 << iota
	// HolderModified: the holder file's data changed behind its
	// mapping (truncated or written over; Linux only).
	HolderModified
	// LockClosed: another process closed the lock file, as a dying
	// holder does (Linux only).
	LockClosed
)

// CanWatch reports whether the system has a watch on open files
// (inotify on Linux, kqueue on macOS and the BSDs). Without one,
// WatchFiles fails with an error matching errors.ErrUnsupported.
const CanWatch = canWatch

var errNoWatch = fmt.Errorf("no watch on this platform: %w", errors.ErrUnsupported)

// A Watch is the watch on one lock's open lock and holder files.
type Watch struct{ watch }

// WatchFiles watches the open files lockF and holderF (the files
// themselves, not whatever their paths name later) and calls fn, on the
// watch's one goroutine, with what it sees happen to them, until Close.
// Close does not wait for fn: a call may be under way when Close
// returns, or start just after, so fn must not assume the files are
// still open. (Waiting would deadlock an fn that closes its own watch,
// as the lock package's does when it reopens the files.)
// It fails where there is no watch, or none can be added (inotify out of
// watches).
func WatchFiles(lockF, holderF *os.File, fn func(Event)) (*Watch, error) {
	return watchFiles(lockF, holderF, fn)
}

// Close removes the watch, before its files are closed.
func (w *Watch) Close() {
	if w != nil {
		w.close()
	}
}
