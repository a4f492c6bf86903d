package lock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentlock/agentlock/internal/record"
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

	cache   atomic.Pointer[record.Cached] // last record read by busy or holder
	checked atomic.Pointer[checkedRecord] // liveness of the holder of a cached record (busy)
}

// open opens (creating it if needed) and maps the file if that has not
// been done yet.
func (h *holderFile) open() (*record.Page, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.page != nil {
		return h.page, nil
	}
	f, err := openFile(h.path, true)
	if err != nil {
		return nil, err
	}
	b, err := mapPage(f, true)
	if err != nil {
		f.Close()
		return nil, err
	}
	h.f, h.page = f, record.NewPage(b)
	return h.page, nil
}

// readPage returns a page to read records from without creating
// anything: the shared one if this process has it open, otherwise a
// read-only mapping made for the purpose (and kept).
func (h *holderFile) readPage() (*record.Page, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.page != nil {
		return h.page, nil
	}
	if h.ro != nil {
		return h.ro, nil
	}
	f, err := openFile(h.path, false)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the mapping outlives the descriptor
	b, err := mapPage(f, false)
	if err != nil {
		return nil, err
	}
	h.ro = record.NewPage(b)
	return h.ro, nil
}

// publishAcquired publishes req.Holder on page right after the lock
// was taken: it sets Since and a token larger than the last one stored,
// and reports the acquisition as abandoned if the caller already knows
// it is (abandoned) or the previous record still says held (its holder
// never released) or cannot be read.
func publishAcquired(page *record.Page, path string, req Request, abandoned bool) (Holder, bool, error) {
	prevState, prevToken, perr := page.Peek()
	abandoned = abandoned || perr != nil || prevState == record.Held
	// The page also keeps the highest token apart from the record, so a
	// record torn by a holder that died while writing it does not send
	// tokens back to the clock alone.
	if last, err := page.LastToken(); err == nil {
		prevToken = max(prevToken, last)
	}
	now := time.Now()
	h := req.Holder
	h.Since = now
	h.Token = nextToken(prevToken, now)
	r := h.toRecord(record.Held)
	if err := page.Store(&r); err != nil {
		return Holder{}, false, &fs.PathError{Op: "lock", Path: path, Err: err}
	}
	return h, abandoned, nil
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
func (h *holderFile) busy(name string) error {
	e := &BusyError{Name: name}
	page, err := h.readPage()
	if err != nil {
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
			break
		}
		runtime.Gosched()
	}
	return e
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

// holder returns the live holder published on the page, or an error
// matching ErrNotHeld.
func (h *holderFile) holder(name string) (Holder, error) {
	page, err := h.readPage()
	if errors.Is(err, fs.ErrNotExist) {
		return Holder{}, fmt.Errorf("lock %s: %w", name, ErrNotHeld)
	}
	if err != nil {
		return Holder{}, err
	}
	c, err := page.LoadCached(&h.cache)
	if err != nil {
		return Holder{}, &fs.PathError{Op: "read holder", Path: h.path, Err: fmt.Errorf("%w: %v", ErrCorrupt, err)}
	}
	if c.Record.State != record.Held {
		return Holder{}, fmt.Errorf("lock %s: %w", name, ErrNotHeld)
	}
	// Not aliveCached: a holder can die without its record changing.
	hd := holderFromRecord(&c.Record)
	if !hd.alive() {
		// The holder died holding the lock: the operating system has
		// released it, and the record is stale.
		return Holder{}, fmt.Errorf("lock %s: %w (its last holder, pid %d, died)", name, ErrNotHeld, hd.PID)
	}
	return hd, nil
}

// pageGrant is a Grant whose record lives on a holder page; unlock
// gives up the underlying lock.
type pageGrant struct {
	hf        *holderFile
	page      *record.Page
	abandoned bool
	unlock    interface{ unlock() error }

	mu     sync.Mutex
	holder Holder
}

func (g *pageGrant) Holder() Holder {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.holder
}

func (g *pageGrant) Abandoned() bool       { return g.abandoned }
func (g *pageGrant) Lost() <-chan struct{} { return nil }

func (g *pageGrant) SetPurpose(purpose string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	h := g.holder
	h.Purpose = purpose
	r := h.toRecord(record.Held)
	if err := g.page.Store(&r); err != nil {
		return &fs.PathError{Op: "publish", Path: g.hf.path, Err: err}
	}
	g.holder = h
	return nil
}

// Release publishes the record as released, then unlocks.
func (g *pageGrant) Release() error {
	g.mu.Lock()
	h := g.holder
	g.mu.Unlock()
	r := h.toRecord(record.Released)
	serr := g.page.Store(&r)
	if err := g.unlock.unlock(); err != nil {
		return err
	}
	if serr != nil {
		return &fs.PathError{Op: "publish", Path: g.hf.path, Err: serr}
	}
	return nil
}
