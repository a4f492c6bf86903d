package lock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentlock/agentlock/internal/proc"
	"github.com/agentlock/agentlock/internal/record"
	"github.com/agentlock/agentlock/lock/internal/oslock"
)

// holderFile is the shared holder page of one lock: NAME.holder mapped
// into every process that uses the lock (see the file backend). The
// file and named-mutex backends both publish records and issue tokens
// through it, so records and tokens behave the same on both.
type holderFile struct {
	path string

	mu   sync.Mutex   // guards the fields below while opening
	f    *os.File     // nil until opened
	page *record.Page // writable mapping, nil until opened
	ro   *record.Page // read-only view for Holder if the page is not open
	roF  *os.File     // ro's file, kept open where that pins it (oslock.OpenPinsPath)

	pageID, roID oslock.FileID // the files of page and ro

	// lock is the file backend's lock of this holder file (nil for the
	// Windows named mutex): its watch tells readPage when to check that
	// page is still at the path; pageEvents is the lock's count of
	// events when it last was.
	lock       *fileLock
	pageEvents atomic.Uint64

	hw   atomic.Pointer[atomic.Uint64] // highWater's entry for path, once looked up
	tmpl record.Template               // this process's last record (see fileLock.publishRecord)

	cache   atomic.Pointer[record.Cached] // last record read by busy or holder
	checked atomic.Pointer[checkedRecord] // liveness of the holder of a cached record (busy)
	live    atomic.Pointer[liveRecord]    // the same for holder, which must see a death
}

// open opens (creating it if needed) and maps the file if that has not
// been done yet.
func (h *holderFile) open() (*record.Page, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.page != nil {
		return h.page, nil
	}
	f, err := oslock.Open(h.path, true)
	if err != nil {
		return nil, err
	}
	b, err := oslock.MapPage(f, true)
	if err != nil {
		f.Close()
		return nil, err
	}
	p := record.NewPage(b)
	// The file is writable by every user, so anyone can truncate it
	// under the mapping; touching the page then faults. Restore its
	// size and carry on: what was lost is the record (which its holder
	// publishes again, see the watch) and the stored token (which
	// tokens recover from, see issueToken).
	p.SetRepair(func() bool { return oslock.RestorePage(f) == nil })
	// The mark says, for as long as this process has the file open,
	// that a lock file it holds is held by this package (see foreign).
	oslock.Mark(f)
	id, _ := oslock.IDOf(f)
	h.f, h.page, h.pageID = f, p, id
	h.pageEvents.Store(^uint64(0)) // checked at first use: the watch may not be set yet
	return h.page, nil
}

// forget drops the open holder file, which is no longer the file at
// the path, so that the next open opens the new one. The old mapping
// is kept: a lease or a reader may still have it, and it only ever
// costs a page.
func (h *holderFile) forget() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range []*os.File{h.f, h.roF} {
		if f != nil {
			f.Close()
		}
	}
	h.f, h.page, h.ro, h.roF = nil, nil, nil, nil
}

// readPage returns a page to read records from without creating
// anything: the shared one if this process has it open, otherwise a
// read-only mapping made for the purpose (and kept). Either is used
// only while its file is still the one at the path (checked when the
// lock's watch has seen a change; for a read-only view, with one lstat
// each time; never where an open file cannot move, see
// oslock.OpenPinsPath): a holder file removed and created anew must not
// leave a reader on the old page.
func (h *holderFile) readPage() (*record.Page, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.page != nil && h.pageAtPath() {
		return h.page, nil
	}
	if h.ro != nil && (h.roF != nil || atPath(h.roID, h.path)) {
		return h.ro, nil
	}
	f, err := oslock.Open(h.path, false)
	if err != nil {
		return nil, err
	}
	id, _ := oslock.IDOf(f)
	b, err := oslock.MapPage(f, false)
	if err != nil || !oslock.OpenPinsPath {
		f.Close() // the mapping outlives the descriptor
		f = nil
	}
	if err != nil {
		return nil, err
	}
	h.ro, h.roID, h.roF = record.NewPage(b), id, f
	return h.ro, nil
}

// pageAtPath reports whether the open page's file is still the file at
// the path, with no system call if the lock's watch has seen nothing
// since the last time it was. The caller holds h.mu.
func (h *holderFile) pageAtPath() bool {
	if oslock.OpenPinsPath {
		return true // h.f is open
	}
	l := h.lock
	if l == nil || !l.watched.Load() {
		return atPath(h.pageID, h.path)
	}
	ev := l.events.Load()
	if ev == h.pageEvents.Load() {
		return true
	}
	if !atPath(h.pageID, h.path) {
		return false
	}
	h.pageEvents.Store(ev)
	return true
}

// atPath reports whether the file identified by id is the file at path.
func atPath(id oslock.FileID, path string) bool {
	now, ok := oslock.IDAt(path)
	return ok && now == id
}

// publishAfter is publishAcquired once the previous record's state and
// token have been read (perr: they could not be). If rel is not nil it
// also encodes there the record that the release will publish.
func publishAfter(page *record.Page, path string, req Request, abandoned bool, prevState record.State, prevToken uint64, perr error, rel *[record.Size]byte) (Holder, bool, error) {
	abandoned = abandoned || perr != nil || prevState == record.Held
	if perr != nil {
		prevToken = 0 // a record that fails its checks says nothing
	}
	now := time.Now()
	token, err := issueToken(page, path, req.Name, prevToken, now)
	if err != nil {
		return Holder{}, false, err
	}
	h := req.Holder
	h.Since = now
	h.Token = token
	r := h.toRecord(record.Held)
	if err := page.StoreHeld(&r, rel); err != nil {
		return Holder{}, false, &fs.PathError{Op: "lock", Path: path, Err: pageError(err)}
	}
	return h, abandoned, nil
}

// maxTokenAhead is how far ahead of the wall clock a stored token may
// be and still be trusted. Tokens are the clock in nanoseconds, or the
// last token plus one if the clock went back, so a genuine token is
// ahead of the clock only by how far the clock was set back while the
// holder file kept its token: 24 hours covers any correction a running
// machine makes. A token further ahead was written by something other
// than this package (the holder file is writable by every user), or
// the clock was set back by more than that.
const maxTokenAhead = 24 * time.Hour

// highWater is, per holder file, the highest token this process has
// issued or accepted: a page whose token went below it (truncated,
// zeroed, replaced) is caught while the process lives.
var highWater sync.Map // holder path → *atomic.Uint64

// issueToken returns the token for an acquisition: the larger of the
// wall clock in nanoseconds and one more than the last token, where the
// last token is the largest of the record's token (prevToken), the
// page's own copy of the highest token (kept apart from the record, so
// that a record torn by a holder that died while writing it does not
// lose it) and this process's high-water mark.
//
// A token stored on a page whose header is not this package's is not
// trusted. A trusted-looking one more than maxTokenAhead ahead of the
// clock is an error matching ErrCorrupt rather than a token below one
// that may have been issued, and never wraps: tokens never go down or
// repeat.
func issueToken(page *record.Page, path, name string, prevToken uint64, now time.Time) (uint64, error) {
	last, ours, err := page.LastToken()
	if err != nil {
		return 0, &fs.PathError{Op: "lock", Path: path, Err: pageError(err)}
	}
	return issueTokenFrom(highWaterOf(path), path, name, prevToken, last, ours, now)
}

// highWaterOf returns highWater's entry for the holder file at path.
func highWaterOf(path string) *atomic.Uint64 {
	v, ok := highWater.Load(path)
	if !ok {
		v, _ = highWater.LoadOrStore(path, new(atomic.Uint64))
	}
	return v.(*atomic.Uint64)
}

// issueTokenFrom is issueToken once the page's highest stored token
// (last) and whether its header is this package's (ours) have been
// read, with the high-water mark hw.
func issueTokenFrom(hw *atomic.Uint64, path, name string, prevToken, last uint64, ours bool, now time.Time) (uint64, error) {
	if !ours {
		last, prevToken = 0, 0
	}
	stored := max(last, prevToken)
	clock := uint64(max(now.UnixNano(), 0))
	high := hw.Load()
	if limit := clock + uint64(maxTokenAhead); stored > limit && stored > high {
		return 0, &fs.PathError{Op: "lock", Path: path, Err: fmt.Errorf(
			"%w: the holder page carries token %d, %v ahead of this machine's clock (more than the %v a stored token may be): "+
				"it was written by something other than this package, or the clock was set back; "+
				"to recover, stop every program using lock %s and remove %s (tokens then restart from the clock; "+
				"a guarded file that carries a higher token refuses writes until an operator replaces it), "+
				"or wait until the clock passes the token",
			ErrCorrupt, stored, ahead(stored-clock), maxTokenAhead, name, path)}
	}
	t := max(stored, high) + 1 // stored and high are below 2⁶⁴-1: no wrap
	t = max(t, clock)
	for {
		old := hw.Load()
		if old >= t || hw.CompareAndSwap(old, t) {
			break
		}
	}
	return t, nil
}

// ahead formats how far a token is ahead of the clock.
func ahead(ns uint64) string {
	const year = uint64(365.25 * 24 * float64(time.Hour))
	if ns >= 2*year {
		return fmt.Sprintf("about %d years", ns/year)
	}
	return time.Duration(ns).Round(time.Second).String()
}

// pageError marks an error from a holder page as ErrCorrupt when the
// page could not be read or trusted (a fault, a record that fails its
// checks).
func pageError(err error) error {
	if errors.Is(err, record.ErrFault) || errors.Is(err, record.ErrCorrupt) {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}

// busy builds the error for a busy lock, with the published record,
// or the foreign holder if there is no live record.
func (h *holderFile) busy(ctx context.Context, name string) *BusyError {
	e := &BusyError{Name: name}
	page, err := h.readPage()
	if err != nil {
		e.Holder, _ = h.foreign(ctx, nil, publishGrace)
		return e
	}
	// The holder publishes its record microseconds after it locks. If
	// the record does not yet say "held" by a live process (right after
	// a crash it still names the dead holder), give it a moment.
	for i := 0; i < 100; i++ {
		c, err := page.LoadCached(&h.cache)
		if err != nil {
			break
		}
		if c.Record.State == record.Held && h.aliveCached(c) {
			e.Holder = holderFromRecord(&c.Record)
			return e
		}
		runtime.Gosched()
	}
	e.Holder, _ = h.foreign(ctx, page, publishGrace)
	return e
}

// testHookRelease, if set, runs between publishing the released record
// and unlocking (tests of a TryAcquire during a release).
var testHookRelease func()

// busyUnless returns the BusyError of a lock that a TryAcquire found
// busy, unless relock, tried again meanwhile, takes it (then nil). A
// lock busy with no holder to name is most often changing hands: its
// holder is between publishing its release and unlocking, which on a
// loaded machine or under Wine outlasts busy's own look. A lock that is
// free by now must be taken, not reported busy; publishGrace bounds the
// retries (after at least one: busy's own look can outlast it), for a
// holder that never publishes (a foreign one where the system has no
// lock table to name it).
func (h *holderFile) busyUnless(ctx context.Context, name string, relock func() bool) *BusyError {
	since := time.Now()
	for tries := 0; ; tries++ {
		e := h.busy(ctx, name)
		if e.Holder.PID != 0 || ctx.Err() != nil || (tries > 0 && time.Since(since) > publishGrace) {
			return e
		}
		if tries < 10 {
			runtime.Gosched()
		} else {
			time.Sleep(100 * time.Microsecond)
		}
		if relock() {
			return nil
		}
	}
}

// foreign returns the holder of the lock file according to the
// operating system's lock table (see oslock.LockHolder), unless the
// holder has published its record by now on page (the window of
// microseconds after it locks). ok is false if the table shows no
// holder or cannot be read.
//
// A holder of this package, told from a foreign one by its mark on the
// holder file (see holderFile.open), is given patience to publish (it
// may be stopped, or starved on a busy machine), and is then reported
// with its PID and host and nothing else; a foreign one is given
// publishGrace, then reported with Foreign set. Meanwhile the table is
// read again now and then: a page whose last record is the holder's
// released one means that it is between publishing its release and
// unlocking, and the lock may change hands.
func (h *holderFile) foreign(ctx context.Context, page *record.Page, patience time.Duration) (hd Holder, ok bool) {
	lockPath := lockPathOf(h.path)
	pid, marked, ok := oslock.LockHolder(lockPath, h.path)
	if !ok {
		return Holder{}, false
	}
	if page == nil {
		if marked {
			return Holder{PID: pid, Host: hostname()}, true
		}
		return Holder{PID: pid, Foreign: true}, true
	}
	start := time.Now()
	var pause time.Duration
	for i := 0; ; i++ {
		if c, err := page.LoadCached(&h.cache); err == nil && c.Record.State == record.Held && int(c.Record.PID) == pid {
			return holderFromRecord(&c.Record), true
		}
		if i < 100 {
			runtime.Gosched()
			continue
		}
		wait := publishGrace
		if marked {
			wait = patience
		}
		if time.Since(start) > wait || ctx.Err() != nil {
			break
		}
		pause = min(max(2*pause, 100*time.Microsecond), 5*time.Millisecond)
		time.Sleep(pause)
		now, nowMarked, ok := oslock.LockHolder(lockPath, h.path)
		if !ok {
			return Holder{}, false
		}
		if now != pid {
			pid, marked = now, false
		}
		marked = marked || nowMarked
	}
	if marked {
		return Holder{PID: pid, Host: hostname()}, true
	}
	return Holder{PID: pid, Foreign: true}, true
}

// publishGrace is how long foreign waits for a holder without the mark
// of this package to publish a record before calling it foreign, and
// how long TryAcquire waits for any holder's record. Holder waits up to
// holderPatience (or its context) for a holder of this package.
const (
	publishGrace   = 20 * time.Millisecond
	holderPatience = time.Second
)

// lockPathOf returns the lock file beside a holder file.
func lockPathOf(holderPath string) string {
	return strings.TrimSuffix(holderPath, ".holder") + ".lock"
}

// aliveCached reports whether the process that published c is alive,
// checking only once per record: a record seen while the lock is busy
// belongs to the holder unless it is left over from a crash, and that
// shows at its first check.
func (h *holderFile) aliveCached(c *record.Cached) bool {
	if ck := h.checked.Load(); ck != nil && ck.c == c {
		return ck.alive
	}
	alive := holderFromRecord(&c.Record).alive()
	h.checked.Store(&checkedRecord{c: c, alive: alive})
	return alive
}

type checkedRecord struct {
	c     *record.Cached
	alive bool
}

// holderAlive reports whether the process that published c is alive.
// Unlike aliveCached it sees a death even if the record does not
// change: where the system offers a handle on the process (a pidfd on
// Linux, a process handle on Windows) it opens one per record and polls
// it, one system call instead of looking the process up, and otherwise
// it asks each time.
func (h *holderFile) holderAlive(c *record.Cached) bool {
	if lr := h.live.Load(); lr != nil && lr.c == c {
		switch {
		case !lr.alive || lr.self:
			return lr.alive // a process never comes back; this one lives
		case lr.w == nil:
			return holderFromRecord(&c.Record).alive() // no handle: ask
		}
		if exited, ok := lr.w.Exited(); ok {
			return !exited
		}
	}
	hd := holderFromRecord(&c.Record)
	self := hd.PID == os.Getpid()
	var w *proc.Watch
	if !self {
		w = proc.NewWatch(hd.PID) // before the check: see proc.NewWatch
	}
	alive := hd.alive()
	if !alive && w != nil {
		w.Close()
		w = nil
	}
	if old := h.live.Swap(&liveRecord{c: c, alive: alive, self: self, w: w}); old != nil && old.w != nil {
		old.w.Close() // a concurrent poll of it fails and asks the system
	}
	return alive
}

// A liveRecord is the liveness of the holder of a cached record, and
// the watch on its process.
type liveRecord struct {
	c           *record.Cached
	alive, self bool
	w           *proc.Watch
}

// holder returns the live holder published on the page, or the
// foreign holder of the lock file, or an error matching ErrNotHeld.
// While the lock is held but its record cannot be read (a truncated or
// damaged page) the error matches ErrCorrupt, never ErrNotHeld.
func (h *holderFile) holder(ctx context.Context, name string) (Holder, error) {
	page, err := h.readPage()
	if errors.Is(err, oslock.ErrShortPage) || errors.Is(err, fs.ErrNotExist) {
		// A lock's first holder creates the file and sizes its page just
		// before locking: if the lock is held now, look again.
		if _, _, held := oslock.LockHolder(lockPathOf(h.path), h.path); held {
			page, err = h.readPage()
		}
	}
	if errors.Is(err, oslock.ErrShortPage) {
		if hd, ok := h.foreign(ctx, nil, holderPatience); ok {
			return Holder{}, &fs.PathError{Op: "read holder", Path: h.path, Err: fmt.Errorf(
				"%w: the file is shorter than its page (truncated) while pid %d holds the lock", ErrCorrupt, hd.PID)}
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		if hd, ok := h.foreign(ctx, nil, holderPatience); ok {
			return hd, nil
		}
		return Holder{}, fmt.Errorf("lock %s: %w", name, ErrNotHeld)
	}
	if err != nil {
		return Holder{}, err
	}
	c, err := page.LoadCached(&h.cache)
	if err != nil {
		return Holder{}, &fs.PathError{Op: "read holder", Path: h.path, Err: pageError(err)}
	}
	var dead Holder
	if c.Record.State == record.Held {
		// Not aliveCached: a holder can die without its record changing.
		hd := holderFromRecord(&c.Record)
		if h.holderAlive(c) {
			return hd, nil
		}
		dead = hd
	}
	patience := holderPatience
	if ctx.Value(quickLook{}) != nil {
		patience = publishGrace
	}
	if hd, ok := h.foreign(ctx, page, patience); ok {
		if hd.Since.IsZero() && !hd.Foreign && ctx.Err() != nil {
			// ctx ended the wait for a holder's record: its error, not
			// the holder without one.
			return Holder{}, ctx.Err()
		}
		return hd, nil
	}
	if dead.PID != 0 {
		// The holder died holding the lock: the operating system has
		// released it, and the record is stale.
		return Holder{}, &AbandonedError{Name: name, Last: dead}
	}
	return Holder{}, fmt.Errorf("lock %s: %w", name, ErrNotHeld)
}

// pageGrant is a Grant whose record lives on a holder page; unlock
// gives up the underlying lock.
type pageGrant struct {
	hf        *holderFile
	page      *record.Page
	abandoned bool
	unlock    interface{ unlock() error }

	// The files locked and published on, for the file backend (nil
	// otherwise), and whether a watch reports their removal (Lost).
	lockF, holderF *os.File
	watched        bool

	mu       sync.Mutex
	holder   Holder
	released bool
	lost     bool          // the files are no longer at their paths
	lostCh   chan struct{} // made by Lost, closed once lost

	// rel is the record Release publishes, encoded while the holder is
	// known (at acquisition, see publishAfter; after SetPurpose, see
	// encodeReleased), so that the release, which a waiting
	// process is timing, only copies bytes; relOK says it is current.
	// (The file backend lends each grant its lock's buffer: one grant
	// per process holds a lock at a time. Otherwise nil, and Release
	// encodes.)
	rel   *[record.Size]byte
	relOK bool
}

func (g *pageGrant) Holder() Holder {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.holder
}

func (g *pageGrant) Abandoned() bool { return g.abandoned }

// Lost returns a channel closed once the lock file or the holder file
// is removed or replaced while held (see markLost), or nil where no
// watch can tell.
func (g *pageGrant) Lost() <-chan struct{} {
	if !g.watched {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lostCh == nil {
		g.lostCh = make(chan struct{})
		if g.lost {
			close(g.lostCh)
		}
	}
	return g.lostCh
}

func (g *pageGrant) SetPurpose(purpose string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lost {
		return &fs.PathError{Op: "publish", Path: g.hf.path, Err: errLost}
	}
	h := g.holder
	h.Purpose = purpose
	r := h.toRecord(record.Held)
	if err := g.page.Store(&r); err != nil {
		return &fs.PathError{Op: "publish", Path: g.hf.path, Err: pageError(err)}
	}
	g.holder = h
	g.encodeReleased()
	return nil
}

// encodeReleased encodes the record that Release will publish. The
// caller holds g.mu or is the only user of g.
func (g *pageGrant) encodeReleased() {
	if g.rel == nil || g.released {
		return // (released: the buffer may be the next grant's now)
	}
	r := g.holder.toRecord(record.Released)
	g.relOK = record.Encode(g.rel[:], &r) == nil
}

// errLost is the error of a lease used after its files were removed
// or replaced.
var errLost = fmt.Errorf("%w: the lock file was removed or replaced while held", ErrLost)

// Release publishes the record as released, then unlocks. A lost grant
// publishes nothing (the page may be another holder's now), unlocks,
// and says it was lost.
func (g *pageGrant) Release() error {
	g.mu.Lock()
	lost := g.lost
	g.released = true
	var serr error
	switch {
	case lost:
	case g.relOK:
		serr = g.page.StoreEncoded(g.rel, g.holder.Token)
	default:
		r := g.holder.toRecord(record.Released)
		serr = g.page.Store(&r)
	}
	g.mu.Unlock()
	if testHookRelease != nil {
		testHookRelease()
	}
	if err := g.unlock.unlock(); err != nil {
		return err
	}
	if lost {
		return &fs.PathError{Op: "release", Path: g.hf.path, Err: errLost}
	}
	if serr != nil {
		return &fs.PathError{Op: "publish", Path: g.hf.path, Err: pageError(serr)}
	}
	return nil
}
