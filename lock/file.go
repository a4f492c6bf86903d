package lock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentlock/agentlock/internal/record"
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

// NewFileBackend returns the file backend on dir, or on the platform's
// default directory if dir is empty. It checks the directory: it must
// exist, be a directory (not a symbolic link to one), and if others may
// write it, carry the sticky bit; the default directory must in addition
// be owned by the system (see the package documentation).
func NewFileBackend(dir string) (Backend, error) {
	isDefault := dir == ""
	if isDefault {
		d, err := defaultDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, &fs.PathError{Op: "lock", Path: dir, Err: err}
	}
	if err := checkDir(abs, isDefault); err != nil {
		return nil, err
	}
	return &fileBackend{dir: abs}, nil
}

type fileBackend struct {
	dir   string
	names sync.Map // name → *fileLock, a cache of locks
}

// fileLock is the per-process state of one lock file. It lives for the
// life of the process (see locks).
type fileLock struct {
	lockPath, holderPath string

	// sem is the in-process semaphore: a send takes it.
	sem chan struct{}

	mu   sync.Mutex // guards the fields below while opening
	f    *os.File   // NAME.lock, nil until opened
	hf   *os.File   // NAME.holder
	page *record.Page
	ro   *record.Page // read-only view for Holder if the page is not open

	cache atomic.Pointer[record.Cached] // last record read by busy or Holder
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
	v, _ := locks.LoadOrStore(p, &fileLock{
		lockPath:   p,
		holderPath: filepath.Join(b.dir, name+".holder"),
		sem:        make(chan struct{}, 1),
	})
	return v.(*fileLock)
}

// open opens and maps the files if that has not been done yet.
func (l *fileLock) open() (*record.Page, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.page != nil {
		return l.page, nil
	}
	f, err := openFile(l.lockPath, true)
	if err != nil {
		return nil, err
	}
	hf, err := openFile(l.holderPath, true)
	if err != nil {
		f.Close()
		return nil, err
	}
	b, err := mapPage(hf, true)
	if err != nil {
		f.Close()
		hf.Close()
		return nil, err
	}
	l.f, l.hf, l.page = f, hf, record.NewPage(b)
	return l.page, nil
}

// readPage returns a page to read records from without creating
// anything: the shared one if this process has it open, otherwise a
// read-only mapping made for the purpose (and kept).
func (l *fileLock) readPage() (*record.Page, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.page != nil {
		return l.page, nil
	}
	if l.ro != nil {
		return l.ro, nil
	}
	hf, err := openFile(l.holderPath, false)
	if err != nil {
		return nil, err
	}
	defer hf.Close() // the mapping outlives the descriptor
	b, err := mapPage(hf, false)
	if err != nil {
		return nil, err
	}
	l.ro = record.NewPage(b)
	return l.ro, nil
}

func (b *fileBackend) Acquire(ctx context.Context, req Request) (Grant, error) {
	l := b.lock(req.Name)
	// Take the in-process semaphore first: no system call is made while
	// another goroutine of this process holds the lock.
	select {
	case l.sem <- struct{}{}:
	default:
		if !req.Wait {
			return nil, l.busy(req.Name)
		}
		select {
		case l.sem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	g, err := b.acquireFile(ctx, l, req)
	if err != nil {
		<-l.sem
		return nil, err
	}
	return g, nil
}

func (b *fileBackend) acquireFile(ctx context.Context, l *fileLock, req Request) (*fileGrant, error) {
	page, err := l.open()
	if err != nil {
		return nil, err
	}
	err = tryLockFile(l.f)
	if errors.Is(err, errWouldBlock) {
		if !req.Wait {
			return nil, l.busy(req.Name)
		}
		err = waitLockFile(ctx, l.f, page)
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, err
		}
		return nil, &fs.PathError{Op: "lock", Path: l.lockPath, Err: err}
	}

	// Locked. The previous record tells whether its holder released
	// cleanly and what the last token was.
	prevState, prevToken, perr := page.Peek()
	abandoned := perr != nil || prevState == record.Held
	now := time.Now()
	h := req.Holder
	h.Since = now
	h.Token = nextToken(prevToken, now)
	r := h.toRecord(record.Held)
	if err := page.Store(&r); err != nil {
		// Without a stored token the next holder could not be sure to
		// get a larger one: fail closed.
		unlockFile(l.f)
		return nil, &fs.PathError{Op: "lock", Path: l.holderPath, Err: err}
	}
	return &fileGrant{l: l, holder: h, abandoned: abandoned}, nil
}

// nextToken returns the token after last: the larger of last+1 and the
// wall clock in nanoseconds. The clock term means that losing the
// stored token (a deleted or corrupted holder file) recovers upward
// rather than reusing tokens, as long as the clock does not go back by
// more than the time since the lost token was issued; the last+1 term
// keeps tokens strictly increasing when the clock does go back.
func nextToken(last uint64, now time.Time) uint64 {
	t := uint64(now.UnixNano())
	if last >= t {
		return last + 1
	}
	return t
}

// busy builds the error for a busy lock, with the published record.
func (l *fileLock) busy(name string) error {
	e := &BusyError{Name: name}
	page, err := l.readPage()
	if err != nil {
		return e
	}
	// The holder publishes its record microseconds after it locks. If
	// the record does not yet say "held", give it a moment.
	for i := 0; i < 100; i++ {
		r, err := page.LoadCached(&l.cache)
		if err != nil {
			break
		}
		if r.State == record.Held {
			e.Holder = holderFromRecord(&r)
			break
		}
		runtime.Gosched()
	}
	return e
}

func (b *fileBackend) Holder(ctx context.Context, name string) (Holder, error) {
	l := b.lock(name)
	page, err := l.readPage()
	if errors.Is(err, fs.ErrNotExist) {
		return Holder{}, fmt.Errorf("lock %s: %w", name, ErrNotHeld)
	}
	if err != nil {
		return Holder{}, err
	}
	r, err := page.LoadCached(&l.cache)
	if err != nil {
		return Holder{}, &fs.PathError{Op: "read holder", Path: l.holderPath, Err: fmt.Errorf("%w: %v", ErrCorrupt, err)}
	}
	if r.State != record.Held {
		return Holder{}, fmt.Errorf("lock %s: %w", name, ErrNotHeld)
	}
	h := holderFromRecord(&r)
	if !h.alive() {
		// The holder died holding the lock: the operating system has
		// released it, and the record is stale.
		return Holder{}, fmt.Errorf("lock %s: %w (its last holder, pid %d, died)", name, ErrNotHeld, h.PID)
	}
	return h, nil
}

type fileGrant struct {
	l         *fileLock
	abandoned bool

	mu     sync.Mutex
	holder Holder
}

func (g *fileGrant) Holder() Holder {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.holder
}

func (g *fileGrant) Abandoned() bool       { return g.abandoned }
func (g *fileGrant) Lost() <-chan struct{} { return nil }

func (g *fileGrant) SetPurpose(purpose string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	h := g.holder
	h.Purpose = purpose
	r := h.toRecord(record.Held)
	if err := g.l.page.Store(&r); err != nil {
		return &fs.PathError{Op: "publish", Path: g.l.holderPath, Err: err}
	}
	g.holder = h
	return nil
}

func (g *fileGrant) Release() error {
	g.mu.Lock()
	h := g.holder
	g.mu.Unlock()
	l := g.l
	r := h.toRecord(record.Released)
	serr := l.page.Store(&r)
	uerr := unlockFile(l.f)
	// Wake processes sleeping in waitLockFile, if any said they were.
	if set, _ := l.page.TakeWaiting(); set {
		wakeWaiters(l.f, l.page)
	}
	<-l.sem
	if uerr != nil {
		return &fs.PathError{Op: "unlock", Path: l.lockPath, Err: uerr}
	}
	if serr != nil {
		return &fs.PathError{Op: "publish", Path: l.holderPath, Err: serr}
	}
	return nil
}
