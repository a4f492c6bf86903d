package lock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentlock/agentlock/internal/record"
	"github.com/agentlock/agentlock/lock/internal/oslock"
)

// The file backend.
//
// Each lock name uses two files in the lock directory, both created on
// first use and never deleted:
//
//   - NAME.lock, the lock itself: an exclusive flock(2) on Unix, a
//     LockFileEx byte-range lock on Windows. The operating system
//     releases it when the holder's process dies, however it dies.
//   - NAME.holder, a 4 KiB page mapped into every process that uses the
//     lock. It holds the holder record and the last fencing token. It is
//     separate because Windows byte-range locks are mandatory: a locked
//     file cannot be read by anyone else, and Holder must work while the
//     lock is held.
//
// Publishing a record is a store into shared memory, not a system call,
// which is what keeps an acquisition with a record close to the cost of
// the bare lock (see BENCHMARKS.md). Readers use a sequence lock and a
// checksum (internal/record), so they never see a torn record.
//
// Each process opens the two files once per lock and keeps them open:
// the lock is the open file description, and a process-wide semaphore
// per lock makes coordinators and goroutines of one process take turns,
// so two coordinators on one name in one process exclude each other,
// and the race detector sees the hand-off.
//
// The files may be removed or replaced behind the process's back. A
// watch where the platform has one (oslock.WatchFiles) counts such
// changes; each acquisition checks that the files it has open are the
// files at the paths (verify) and opens the new ones if not, and a
// held lease whose lock file went is lost (pageGrant.Lost).

// NewFileBackend returns the file backend on dir, or on the platform's
// default directory (see the package documentation) if dir is empty.
// New uses it unless WithBackend says otherwise.
//
// The directory must exist and be a directory, not a symbolic link to
// one. It is refused with an error matching ErrUnsafePath if an
// untrusted user could swap files in it: on Unix, if it is owned by
// someone other than root or the caller, or writable by group or others
// without the sticky bit; on Windows, if it is a reparse point, is owned
// by someone other than SYSTEM, Administrators or the caller without an
// OWNER RIGHTS entry, or lets anyone else delete or rename it or the
// files in it, or change their DACL or owner (the creator of a file
// excepted). The default directory must in addition be owned by the
// system on Unix; on Windows it is created with a DACL that lets every
// authenticated user create, read and write files but not delete them,
// so a service and a desktop program share it whichever created it.
// New fails rather than use another directory.
//
// The lock's two files, NAME.lock and NAME.holder, are created on first
// use with mode 0666 whatever the umask, opened once per process with
// O_NOFOLLOW and close-on-exec and kept open, and never deleted. A link
// or anything but a regular file at either path is refused
// (ErrUnsafePath). A file that another user owns with another mode (a
// planted 0600 file would lock every third user out) is given mode 0666
// when root or its owner opens it; anyone else gets an error naming its
// owner and mode. Read-only file systems, permission errors and ENOLCK
// are *fs.PathError. On Unix the holder file's page is allocated when it is
// created, so a full file system fails at a name's first use, not
// later. On Linux one inotify instance (on macOS and the BSDs, one
// kqueue) serves the whole process, with a watch per file. Without a
// watch (the user's inotify limits exhausted) locks still work: deaths
// are then seen by polling and Lease.Lost stays open.
//
// The lock directory must not be cleaned while programs use it (a WithDir
// under /tmp or /var/tmp is exposed to cleaners). If it is, exclusion
// holds among the programs that open the new files: each acquisition
// checks that the file it locked is the file at the path, and opens it
// anew if not (on Windows, which has no watch here to say when to
// check, after a wait and at a process's first acquisition). A holder whose lock file is removed or replaced while it
// holds has lost the lock: Lease.Lost closes (Linux, macOS, BSDs), its
// SetPurpose and Release return errors matching ErrLost, and guarded
// files refuse its writes; on Windows a held lock file cannot be removed
// or renamed. A holder whose holder file alone is replaced keeps the
// lock and, where there is a watch, publishes on the new file. A
// truncated holder file is given its page back by the first process
// that touches it, and its holder publishes again (on Linux at once,
// elsewhere at its next SetPurpose); meanwhile Holder reports
// ErrCorrupt, never ErrNotHeld for a held lock, and Release succeeds. (In a program
// built with the race detector a page truncated under a holder can kill
// it: the race runtime cannot recover that fault.)
//
// A process that locks NAME.lock without this package (flock(1),
// Python's fcntl.flock) excludes and is excluded like any holder but
// publishes no record. On Linux, Holder and BusyError report its pid
// from /proc/locks, with Holder.Foreign set; a holder of this package
// caught between locking and publishing is told apart by the shared
// flock(2) every process keeps on the NAME.holder it has open, and is
// reported by pid and host. (So a process that uses this package for a
// lock and also locks its NAME.lock by other means is reported as this
// package's holder; and NAME.holder must not be locked by anything
// else: an exclusive lock there delays the shared ones, or, taken
// first, leaves this package's holders reported as foreign.) Elsewhere
// the lock shows busy with a zero Holder and Holder reports ErrNotHeld.
// Such a holder does not wake waiters when it unlocks, so they then look
// again every 10 ms.
//
// Records name processes by pid, start time and boot, as the reader's
// system sees them: the programs sharing a lock directory must share a
// pid namespace (a container sharing one with the host needs the host's
// pid namespace), or a live holder can be reported dead.
//
// On Windows the service accounts LocalSystem, LocalService,
// NetworkService and virtual accounts (NT SERVICE\NAME) are all
// authenticated users, so each shares the default directory with
// desktop programs whichever of them starts first. A default directory
// that fails the rule above (one that another user created without the
// OWNER RIGHTS entry, as development versions of this package did) is
// refused with ErrUnsafePath until an administrator removes it. A
// waiting goroutine stays locked to the OS thread that issued its
// overlapped LockFileEx until the request completes or is withdrawn,
// since Windows cancels a pending request whose thread exits. Under
// Wine, which does not complete overlapped LockFileEx waits, a waiter
// sleeps on a named event that releasers set and on the holder's
// process handle, with a 100 ms fallback.
func NewFileBackend(dir string) (Backend, error) {
	isDefault := dir == ""
	if isDefault {
		d, err := oslock.DefaultDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, &fs.PathError{Op: "lock", Path: dir, Err: err}
	}
	if err := oslock.CheckDir(abs, isDefault); err != nil {
		return nil, err
	}
	return &fileBackend{dir: abs}, nil
}

type fileBackend struct {
	dir   string
	names sync.Map // name → *fileLock: saves building the path each time
}

// fileLock is the per-process state of one lock file. It lives for the
// life of the process (see locks).
type fileLock struct {
	lockPath string
	hf       holderFile // NAME.holder

	// sem is the in-process semaphore: a send takes it.
	sem chan struct{}

	mu    sync.Mutex // guards f, watched and w while opening
	f     *os.File   // NAME.lock, nil until opened
	ready atomic.Pointer[record.Page]

	// The identity check (verify). The watch on the two files (see
	// fileLock.watch) counts in events every change to either file's name
	// or links; verified is the count at the last check that found
	// both files at their paths (^0 before the first), so an unchanged
	// count spares the check its system calls. Only the holder of sem
	// uses verified.
	watched  atomic.Bool      // written under mu
	w        *oslock.Watch    // nil if not watched; written under mu
	ws       oslock.WaitState // shared by the waits and the watch
	waking   atomic.Bool      // a death wake-up is under way (deathWake)
	events   atomic.Uint64
	verified uint64

	// rel is the buffer each grant encodes its released record in
	// (pageGrant.rel). Only the holder of sem uses it.
	rel [record.Size]byte

	held atomic.Pointer[pageGrant] // the grant while this process holds the lock
}

var locks sync.Map // lock file path → *fileLock

func (b *fileBackend) lock(name string) *fileLock {
	if v, ok := b.names.Load(name); ok {
		return v.(*fileLock)
	}
	l := b.register(name)
	b.names.Store(name, l)
	return l
}

func (b *fileBackend) register(name string) *fileLock {
	p := filepath.Join(b.dir, name+".lock")
	if v, ok := locks.Load(p); ok {
		return v.(*fileLock)
	}
	l := &fileLock{
		lockPath: p,
		hf:       holderFile{path: filepath.Join(b.dir, name+".holder")},
		sem:      make(chan struct{}, 1),
		verified: ^uint64(0),
	}
	l.hf.lock = l
	v, _ := locks.LoadOrStore(p, l)
	return v.(*fileLock)
}

// open opens the lock file and maps the holder page if that has not
// been done yet.
func (l *fileLock) open() (*record.Page, error) {
	if p := l.ready.Load(); p != nil {
		return p, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.openLocked()
}

func (l *fileLock) openLocked() (*record.Page, error) {
	if l.f == nil {
		f, err := oslock.Open(l.lockPath, true)
		if err != nil {
			return nil, err
		}
		l.f = f
	}
	p, err := l.hf.open()
	if err != nil {
		return nil, err
	}
	if !l.watched.Load() {
		// Without a watch every acquisition checks the files' identity
		// with system calls, and a held lock cannot tell it was lost.
		l.watched.Store(l.watch())
	}
	l.ready.Store(p)
	return p, nil
}

// reopen closes the lock file (if lock) and the holder file (if
// holder), which are no longer the files at their paths, and opens
// what is there now. The caller holds sem and does not hold the lock
// on a file it closes.
func (l *fileLock) reopen(lock, holder bool) (*record.Page, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ready.Store(nil)
	if l.watched.Load() {
		l.unwatch()
		l.watched.Store(false)
	}
	if lock && l.f != nil {
		l.f.Close()
		l.f = nil
	}
	if holder {
		l.hf.forget()
	}
	return l.openLocked()
}

// Moved, Watched, HolderLive and WaitState make a fileLock the
// oslock.Waiter of its waits: the watch's count of changes says whether
// the files moved, and the cached record whether a live holder will
// wake the sleepers when it releases (liveness is checked before each
// sleep, see holderAlive: a holder that died leaves its record, and a
// process that locks without this package may hold the lock after it).
func (l *fileLock) Moved() bool { return l.events.Load() != l.verified }

func (l *fileLock) Watched() bool { return l.watched.Load() }

func (l *fileLock) HolderLive(page *record.Page) bool {
	c, err := page.LoadCached(&l.hf.cache)
	return err == nil && c.Record.State == record.Held && l.hf.holderAlive(c)
}

func (l *fileLock) WaitState() *oslock.WaitState { return &l.ws }

// verify reports whether the lock file and the holder file that this
// process has open are still the files at their paths. Someone may have
// removed or replaced them (a cleaner of old files, an administrator):
// a lock on a file that is no longer at the path excludes nobody who
// opens the path now. Without a change seen by the watch since the last
// check, it makes no system call (see pathsUnchanged). Without a watch
// it checks after a wait, when the files may have changed while it
// waited, and otherwise only at a process's first acquisition. Where
// open files cannot be moved (Windows) it never checks.
func (l *fileLock) verify(waited bool) (lockOK, holderOK bool) {
	if oslock.OpenPinsPath {
		l.verified = l.events.Load() // else Moved, and a wait would spin
		return true, true
	}
	if l.pathsUnchanged() && (l.watched.Load() || !waited) {
		return true, true
	}
	ev := l.events.Load()
	lockOK = oslock.SameFile(l.f, l.lockPath)
	holderOK = l.hf.f == nil || oslock.SameFile(l.hf.f, l.hf.path)
	if lockOK && holderOK {
		l.verified = ev
	}
	return lockOK, holderOK
}

// maxReopens bounds how often one acquisition reopens files replaced
// under it: a path that never holds still is someone attacking the lock
// directory, and an error is better than a spin.
const maxReopens = 100

// checked returns the lock of a name given to the backend from outside
// (a Coordinator has validated it already; a direct caller may not
// have): names are validated once, when first seen.
func (b *fileBackend) checked(name string) (*fileLock, error) {
	if v, ok := b.names.Load(name); ok {
		return v.(*fileLock), nil
	}
	if err := validateName(name); err != nil {
		return nil, err
	}
	return b.lock(name), nil
}

func (b *fileBackend) Acquire(ctx context.Context, req Request) (Grant, error) {
	l, err := b.checked(req.Name)
	if err != nil {
		return nil, err
	}
	return b.acquire(ctx, l, req)
}

// bind returns Acquire for requests on the lock name, which New has
// validated.
func (b *fileBackend) bind(name string) func(context.Context, Request) (Grant, error) {
	l := b.lock(name)
	return func(ctx context.Context, req Request) (Grant, error) {
		return b.acquire(ctx, l, req)
	}
}

func (b *fileBackend) acquire(ctx context.Context, l *fileLock, req Request) (Grant, error) {
	// Take the in-process semaphore first: no system call is made while
	// another goroutine of this process holds the lock.
	if err := takeTurn(ctx, l.sem, req.Name, req.Wait, &l.hf); err != nil {
		return nil, err
	}
	g, err := b.acquireFile(ctx, l, &req)
	if err != nil {
		<-l.sem
		return nil, err
	}
	return g, nil
}

func (b *fileBackend) acquireFile(ctx context.Context, l *fileLock, req *Request) (*pageGrant, error) {
	// A wait allocates its grant before it locks (see Coordinator.acquire).
	var g *pageGrant
	if req.Wait {
		g = new(pageGrant)
	}
	for reopens := 0; ; {
		page, err := l.open()
		if err != nil {
			return nil, err
		}
		err = oslock.TryLockContext(ctx, l.f)
		waited := errors.Is(err, oslock.ErrWouldBlock)
		if waited {
			if !req.Wait {
				if e := l.hf.busyUnless(ctx, req.Name, func() bool { return oslock.TryLockContext(ctx, l.f) == nil }); e != nil {
					return nil, e
				}
				err = nil // taken on a second look
			} else {
				err = oslock.Wait(ctx, l.f, page, l)
			}
		}
		locked := err == nil
		if err != nil && err != oslock.ErrMoved {
			return nil, l.lockError(ctx, err)
		}

		// Before publishing: are these still the files at the paths?
		lockOK, holderOK := l.verify(waited)
		if locked && lockOK {
			if !holderOK {
				// The lock is sound; publish on the page now at the path.
				if page, err = l.reopen(false, true); err != nil {
					oslock.Unlock(l.f)
					return nil, err
				}
			}
			if testHookPublish != nil {
				testHookPublish()
			}
			return b.publish(l, page, req, g)
		}
		if locked {
			oslock.Unlock(l.f)
		}
		if !lockOK || !holderOK {
			if _, err := l.reopen(!lockOK, !holderOK); err != nil {
				return nil, err
			}
			reopens++
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if reopens >= maxReopens {
			return nil, &fs.PathError{Op: "lock", Path: l.lockPath, Err: fmt.Errorf("%w: the file was replaced %d times while locking", ErrUnsafePath, reopens)}
		}
	}
}

// lockError is the error of a failed lock or wait: ctx's own, or an
// *fs.PathError naming the file at fault.
func (l *fileLock) lockError(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return err
	}
	if errors.Is(err, record.ErrFault) {
		return &fs.PathError{Op: "lock", Path: l.hf.path, Err: pageError(err)}
	}
	return &fs.PathError{Op: "lock", Path: l.lockPath, Err: err}
}

// testHookPublish, if set, runs between taking the lock and publishing
// its record (tests of a holder slow to publish).
var testHookPublish func()

// publish publishes the record of a lock just taken, with g (if not
// nil) the grant to fill in.
func (b *fileBackend) publish(l *fileLock, page *record.Page, req *Request, g *pageGrant) (*pageGrant, error) {
	h, abandoned, err := l.publishRecord(page, req)
	if errors.Is(err, ErrCorrupt) && !oslock.SameFile(l.hf.f, l.hf.path) {
		// A page replaced in the moment before the lock was taken (an
		// operator's recovery from a corrupt page) that the watch has
		// not reported yet: use the new one.
		if page, err = l.reopen(false, true); err == nil {
			h, abandoned, err = l.publishRecord(page, req)
		}
	}
	if err != nil {
		// Without a stored token the next holder could not be sure to
		// get a larger one: fail closed.
		oslock.Unlock(l.f)
		return nil, err
	}
	if g == nil {
		g = new(pageGrant)
	}
	*g = pageGrant{hf: &l.hf, page: page, holder: h, abandoned: abandoned, unlock: l,
		lockF: l.f, holderF: l.hf.f, watched: l.watched.Load(), rel: &l.rel, relOK: true}
	l.held.Store(g)
	// A change the watch counted after verify but handled before held
	// was set has not been checked against this grant: check it now
	// (the watch checks every later one itself).
	if l.events.Load() != l.verified {
		g.checkLost(l)
	}
	return g, nil
}

// publishRecord is publishAfter for the file backend, in one touch of
// the page (record.Page.PublishFrom): the previous record tells
// whether its holder released cleanly and what the last token was
// (the page's mark of a clean release says so without reading it), the
// token is issued, the record stored through the holder file's template
// and the released record prepared in l.rel, so that Release only
// copies it. The caller holds l.sem, which guards the template and
// l.rel.
func (l *fileLock) publishRecord(page *record.Page, req *Request) (Holder, bool, error) {
	hf := &l.hf
	hw := hf.hw.Load()
	if hw == nil {
		hw = highWaterOf(hf.path)
		hf.hw.Store(hw)
	}
	now := time.Now()
	h := req.Holder
	h.Since = now
	r := h.toRecord(record.Held)
	var abandoned bool
	var terr error
	err := page.PublishFrom(&hf.tmpl, &r, &l.rel, func(last uint64, ours, released bool) (uint64, error) {
		// A clean release leaves a mark the page's next writer can see
		// without reading the record (see record.Page.PublishFrom).
		st, prevToken, perr := record.Released, last, error(nil)
		if !released {
			st, prevToken, perr = page.Peek()
		}
		abandoned = perr != nil || st == record.Held
		if perr != nil {
			prevToken = 0 // a record that fails its checks says nothing
		}
		t, err := issueTokenFrom(hw, hf.path, req.Name, prevToken, last, ours, now)
		terr = err
		return t, err
	})
	if err != nil {
		if err != terr {
			err = &fs.PathError{Op: "lock", Path: hf.path, Err: pageError(err)}
		}
		return Holder{}, false, err
	}
	h.Token = r.Token
	return h, abandoned, nil
}

// unlock releases the lock file and the in-process semaphore.
func (l *fileLock) unlock() error {
	l.held.Store(nil)
	err := oslock.Unlock(l.f)
	// Wake processes sleeping in oslock.Wait, if any said they were
	// (see oslock.ReleaseWake). (The page through ready: the watch may move the
	// holder to a new holder file while it holds the lock, see
	// pageGrant.checkLost.)
	if page := l.ready.Load(); page != nil {
		oslock.ReleaseWake(l.f, page)
	}
	<-l.sem
	if err != nil {
		return &fs.PathError{Op: "unlock", Path: l.lockPath, Err: err}
	}
	return nil
}

func (b *fileBackend) Holder(ctx context.Context, name string) (Holder, error) {
	l, err := b.checked(name)
	if err != nil {
		return Holder{}, err
	}
	return l.hf.holder(ctx, name)
}
