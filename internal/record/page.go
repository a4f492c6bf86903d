package record

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"
	"unsafe"
)

// PageSize is the size of the shared holder page: the file that holds
// it is mapped into every process that uses the lock.
//
// Layout:
//
//	off  len  field
//	  0    8  magic "AGLKHP01" (all zero in a fresh file)
//	  8    4  sequence (seqlock: odd while a write is in progress)
//	 12    4  release mark: the sequence a clean release's write left,
//	 16    8  and the token it stored (see PublishFrom)
//	 24    8  highest token ever stored (kept apart from the body, so a
//	          body torn by a writer that died mid-write does not lose it)
//	 64  384  record body (see package doc)
//	512    4  waiters flag (non-zero: someone sleeps waiting for a release)
//	516    4  wake sequence (bumped by every wake-up; a futex word on Linux)
//	520    4  woken flag (non-zero: a sleeper was woken and has not yet
//	          gone back to sleep, so another wake-up would be wasted)
//
// The words waiters write are in a cache line of their own, apart from
// the ones the holder writes on every acquisition.
//
// Only the lock holder writes the body, so writers never race each
// other; readers that do not hold the lock use the sequence number to
// get a consistent copy and the body's checksum to reject anything
// else.
const PageSize = 4096

const (
	magic     = "AGLKHP01"
	seqOff    = 8
	relOff    = 12
	relTokOff = 16
	waitOff   = 512
	wakeOff   = 516
	wokenOff  = 520
	tokenOff  = 24
	bodyOff   = 64
	maxSpins  = 100

	maxWriteWait = 20 * time.Millisecond
)

// Page is a view of a shared holder page, normally a memory mapping of
// the holder file. Any method may return an error wrapping ErrFault if
// the underlying file shrank under the mapping and could not be
// restored (see SetRepair).
type Page struct {
	b      []byte
	repair func() bool
}

// SetRepair sets the function a method calls when touching the page
// faults: it restores the file under the mapping (another process may
// have truncated it) and reports whether it did, and the method then
// tries once more. Call it before the page is shared.
func (p *Page) SetRepair(repair func() bool) { p.repair = repair }

// Repair calls the repair function, if any: for callers that learn of
// a fault other than through a method (a futex call reports EFAULT).
func (p *Page) Repair() bool { return p.repair != nil && p.repair() }

// do runs f, which touches the mapping, turning a memory fault into an
// error; after a fault it repairs the page and runs f once more.
func (p *Page) do(f func() error) error {
	err := touch(f)
	if err != nil && errors.Is(err, ErrFault) && p.Repair() {
		err = touch(f)
	}
	return err
}

func touch(f func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	return f()
}

// NewPage returns a Page over b, which must be PageSize bytes long
// and 8-byte aligned (a memory mapping is).
func NewPage(b []byte) *Page {
	if len(b) != PageSize || uintptr(unsafe.Pointer(&b[0]))%8 != 0 {
		panic("record: bad page")
	}
	return &Page{b: b}
}

func (p *Page) seq() *uint32    { return (*uint32)(unsafe.Pointer(&p.b[seqOff])) }
func (p *Page) relSeq() *uint32 { return (*uint32)(unsafe.Pointer(&p.b[relOff])) }
func (p *Page) relTok() *uint64 { return (*uint64)(unsafe.Pointer(&p.b[relTokOff])) }

// markReleased leaves the release mark of a release whose write left
// the sequence number seq and stored token (see PublishFrom).
func (p *Page) markReleased(seq uint32, token uint64) {
	atomic.StoreUint64(p.relTok(), token)
	atomic.StoreUint32(p.relSeq(), seq)
}

// releasedMark reports whether a page whose header is this package's
// carries the mark of a clean release that is still its last write: the
// mark names the page's sequence number (a settled one, never the zero
// of a page written whole by another program) and its highest token,
// last, which any later acquisition would have raised.
func (p *Page) releasedMark(last uint64) bool {
	s := atomic.LoadUint32(p.seq())
	return s != 0 && s&1 == 0 && atomic.LoadUint32(p.relSeq()) == s && atomic.LoadUint64(p.relTok()) == last
}
func (p *Page) waiters() *uint32 { return (*uint32)(unsafe.Pointer(&p.b[waitOff])) }

// WakeWord returns the address of the wake sequence, for futex system
// calls (which report a bad address as EFAULT rather than fault).
func (p *Page) WakeWord() *uint32 { return (*uint32)(unsafe.Pointer(&p.b[wakeOff])) }

// WakeSeq returns the wake sequence.
func (p *Page) WakeSeq() (s uint32, err error) {
	err = p.do(func() error {
		s = atomic.LoadUint32(p.WakeWord())
		return nil
	})
	return s, err
}

func (p *Page) woken() *uint32     { return (*uint32)(unsafe.Pointer(&p.b[wokenOff])) }
func (p *Page) lastToken() *uint64 { return (*uint64)(unsafe.Pointer(&p.b[tokenOff])) }

// LastToken returns the highest token ever stored on the page, and
// whether the page's header is this package's (a token on a page
// without it was not stored by this package).
func (p *Page) LastToken() (t uint64, ours bool, err error) {
	err = p.do(func() error {
		t = atomic.LoadUint64(p.lastToken())
		ours = string(p.b[:8]) == magic
		return nil
	})
	return t, ours, err
}

// MarkWoken sets the woken flag and reports whether it was clear, that
// is, whether the caller should wake a sleeper.
func (p *Page) MarkWoken() (was bool, err error) {
	err = p.do(func() error {
		was = atomic.SwapUint32(p.woken(), 1) == 0
		return nil
	})
	return was, err
}

// ClearWoken clears the woken flag: the caller, a sleeper that woke, is
// about to try the lock and, if that fails, to sleep again.
func (p *Page) ClearWoken() error {
	return p.do(func() error {
		if atomic.LoadUint32(p.woken()) != 0 {
			atomic.StoreUint32(p.woken(), 0)
		}
		return nil
	})
}

// BumpWake advances the wake sequence, so that a sleeper that read the
// old value does not go to sleep (or wakes).
func (p *Page) BumpWake() error {
	return p.do(func() error {
		atomic.AddUint32(p.WakeWord(), 1)
		return nil
	})
}

// ErrFault reports that the mapped file could not be accessed: the
// process got SIGBUS (or SIGSEGV) touching the mapping, because another
// process truncated the file or its storage failed.
var ErrFault = errors.New("memory fault (SIGBUS) on the holder page: the file was truncated or its storage failed")

// guard turns a memory fault while touching the mapping into an error
// instead of a crash of the whole process. The runtime's own message
// ("invalid memory address or nil pointer dereference") would mislead:
// the fault is in a file, not in a pointer.
func guard(err *error) {
	if r := recover(); r != nil {
		if re, ok := r.(runtime.Error); ok && isFault(re) {
			*err = ErrFault
			return
		}
		panic(r)
	}
}

func isFault(e runtime.Error) bool {
	type addressable interface{ Addr() uintptr }
	_, ok := e.(addressable)
	return ok
}

// Load returns a consistent copy of the record. A page whose header
// is foreign, or whose body fails to decode, yields an error matching
// ErrCorrupt. A writer that died in the middle of a write leaves the
// sequence odd; Load then decodes what is there, which either passes
// the checksum (the write had finished) or is reported as corrupt.
func (p *Page) Load() (r Record, err error) {
	err = p.read(func(body []byte) error {
		r, err = Decode(body)
		return err
	})
	return r, err
}

// LoadCached is Load with a one-entry cache: if the page has not been
// written since the record in c was read, it returns that entry without
// decoding (and without allocating); otherwise it reads the record and
// updates c. Every write advances the page's sequence number, so an
// unchanged number means an unchanged record. The result is shared and
// must not be modified; a new pointer means a new record.
func (p *Page) LoadCached(c *atomic.Pointer[Cached]) (*Cached, error) {
	s, err := p.sequence()
	if err != nil {
		return nil, err
	}
	if old := c.Load(); old != nil && s&1 == 0 && old.Seq == s && s != 0 {
		return old, nil
	}
	n := new(Cached)
	err = p.read(func(body []byte) error {
		var err error
		n.Record, err = Decode(body)
		n.Seq = atomic.LoadUint32(p.seq())
		return err
	})
	if err != nil {
		return nil, err
	}
	if n.Seq&1 == 0 {
		c.Store(n)
	}
	return n, nil
}

func (p *Page) sequence() (s uint32, err error) {
	err = p.do(func() error {
		s = atomic.LoadUint32(p.seq())
		return nil
	})
	return s, err
}

// Cached is a record read from a page, with the page's sequence number
// at the time.
type Cached struct {
	Seq    uint32
	Record Record
}

// Peek returns the state and token of the record, with the same checks
// as Load but without copying its strings.
func (p *Page) Peek() (st State, token uint64, err error) {
	err = p.read(func(body []byte) error {
		st, token, err = peek(body)
		return err
	})
	return st, token, err
}

// read runs decode on the body in place, under the sequence lock: the
// result counts only if no write overlapped it. decode must not keep
// body, and must cope with any bytes (a torn read is retried).
func (p *Page) read(decode func(body []byte) error) error {
	return p.do(func() error { return p.readOnce(decode) })
}

func (p *Page) readOnce(decode func(body []byte) error) error {
	body := p.b[bodyOff : bodyOff+Size]
	// A write takes well under a microsecond, but its writer can be
	// preempted in the middle; only a write still unfinished after
	// maxWriteWait is taken for one whose writer died.
	var giveUp time.Time
	retry := func(i int) bool {
		if i < maxSpins {
			return true
		}
		if giveUp.IsZero() {
			giveUp = time.Now().Add(maxWriteWait)
		}
		if time.Now().Before(giveUp) {
			time.Sleep(50 * time.Microsecond)
			return true
		}
		return false
	}
	for i := 0; ; i++ {
		s1 := atomic.LoadUint32(p.seq())
		if s1&1 != 0 && retry(i) {
			runtime.Gosched()
			continue
		}
		var head [8]byte
		copy(head[:], p.b[:8])
		derr := decode(body)
		if atomic.LoadUint32(p.seq()) != s1 && retry(i) {
			continue
		}
		switch string(head[:]) {
		case magic:
			return derr
		case "\x00\x00\x00\x00\x00\x00\x00\x00":
			if s1 == 0 && Zero(body) {
				return decode(zeroBody[:])
			}
		}
		return fmt.Errorf("%w: foreign page header %q", ErrCorrupt, string(head[:]))
	}
}

var zeroBody [Size]byte

// Store replaces the record. The caller must hold the lock.
func (p *Page) Store(r *Record) (err error) {
	if err := check(r); err != nil {
		return err
	}
	return p.storeChecked(r)
}

// StoreHeld is Store for the record of a lock just taken that also
// encodes into rel (if not nil) the same record in state Released, for
// the release to store with StoreEncoded: the record's strings are
// checked once for both.
func (p *Page) StoreHeld(r *Record, rel *[Size]byte) error {
	if err := check(r); err != nil {
		return err
	}
	if err := p.storeChecked(r); err != nil {
		return err
	}
	// After the store: readers wait for the held record, not for this.
	if rel != nil {
		released := *r
		released.State = Released
		encode(rel[:], &released)
	}
	return nil
}

// storeChecked is Store after check. A released record marks the page
// as released cleanly (see PublishFrom).
func (p *Page) storeChecked(r *Record) error {
	return p.do(func() error {
		seq := p.writeTouched(r.Token, func(body []byte) { encode(body, r) })
		if r.State == Released {
			p.markReleased(seq, r.Token)
		}
		return nil
	})
}

// writeTouched runs fill on the body under the sequence lock, after
// raising the page's highest token to token, and returns the page's
// sequence number after the write. The caller touches the page (do).
func (p *Page) writeTouched(token uint64, fill func(body []byte)) uint32 {
	s := atomic.LoadUint32(p.seq())
	if string(p.b[:8]) != magic {
		// A fresh page, or one that was zeroed (truncated and
		// restored): start the sequence somewhere new, so that a
		// reader's cache of a record from before cannot match.
		s = uint32(time.Now().UnixNano()) &^ 1
		atomic.StoreUint64(p.lastToken(), 0)
		p.markReleased(0, 0) // (no release mark survives either)
	}
	atomic.StoreUint32(p.seq(), s|1) // odd: write in progress
	if string(p.b[:8]) != magic {
		copy(p.b[:8], magic)
	}
	if atomic.LoadUint64(p.lastToken()) < token {
		atomic.StoreUint64(p.lastToken(), token)
	}
	fill(p.b[bodyOff : bodyOff+Size])
	seq := (s | 1) + 1
	atomic.StoreUint32(p.seq(), seq)
	return seq
}

// PublishFrom is StoreHeld through t, the template of the holder's
// last record on any page, with the record's token decided in the same
// touch of the page as the store (a touch guards against faults, which
// costs a little each time). If r's holder is t's (only the token and
// the time differ), the record is the template with those patched in,
// and rel the same with the state patched, with no encoding or
// checksum over the whole body; otherwise t is remade from r first.
// token is called with the page's highest stored token, whether its
// header is this package's (see LastToken) and whether its record is a
// clean release's (released), and returns the token; r's Token is set
// to it. If token fails, nothing is stored and its error is returned
// as it is. token may be called again if the page faulted and was
// repaired.
//
// released says that the page's last write through this package, in
// any process, was a release (StoreEncoded, or Store of a record in
// state Released): the release left a mark in the header, its sequence
// number and token, which every later write moves past. The next holder
// then knows that its predecessor released cleanly, and that its token
// is the highest stored, without reading and checking the record; on a
// lock that moves between processes, that read would be made while the
// lock is held. A program that writes the file without this package
// can forge the mark, as it can forge a record that passes its
// checks; one that scribbles on the record leaves a mark that is still
// true of the last holder, whose record this publish overwrites.
func (p *Page) PublishFrom(t *Template, r *Record, rel *[Size]byte, token func(last uint64, ours, released bool) (uint64, error)) error {
	if r.State != Held {
		return fmt.Errorf("invalid state %d for a held record", r.State)
	}
	if err := t.set(r); err != nil {
		return err
	}
	var sum uint32
	err := p.do(func() error {
		last, ours := atomic.LoadUint64(p.lastToken()), string(p.b[:8]) == magic
		tok, err := token(last, ours, ours && p.releasedMark(last))
		if err != nil {
			return err
		}
		r.Token = tok
		p.writeTouched(tok, func(body []byte) { sum = t.fill(body, Held, tok, r.Since) })
		return nil
	})
	if err != nil {
		return err
	}
	if rel != nil {
		copy(rel[:], t.body[:])
		t.patch(rel[:], Released, r.Token, r.Since, sum^releasedFlip())
	}
	return nil
}

// SetWaiting records that a process is about to sleep until the lock
// is released. A releaser that finds the flag set clears it and wakes
// the sleepers (see TakeWaiting).
func (p *Page) SetWaiting() error {
	return p.do(func() error {
		if atomic.LoadUint32(p.waiters()) == 0 {
			atomic.StoreUint32(p.waiters(), 1)
		}
		return nil
	})
}

// TakeWaiting clears the waiters flag and reports whether it was set.
func (p *Page) TakeWaiting() (set bool, err error) {
	err = p.do(func() error {
		set = atomic.LoadUint32(p.waiters()) != 0 && atomic.SwapUint32(p.waiters(), 0) != 0
		return nil
	})
	return set, err
}

// Arm prepares a sleeper's attempt in one touch of the page: it reads
// the wake sequence (to sleep on if the attempt fails), then sets the
// waiters flag (so that the next release wakes a sleeper) and clears
// the woken flag (this sleeper is awake and about to try). It is
// WakeSeq, SetWaiting and ClearWoken in that order.
func (p *Page) Arm() (seq uint32, err error) {
	err = p.do(func() error {
		seq = atomic.LoadUint32(p.WakeWord())
		if atomic.LoadUint32(p.waiters()) == 0 {
			atomic.StoreUint32(p.waiters(), 1)
		}
		if atomic.LoadUint32(p.woken()) != 0 {
			atomic.StoreUint32(p.woken(), 0)
		}
		return nil
	})
	return seq, err
}

// TakeWake is a releaser's side of a wake-up in one touch of the page:
// if the waiters flag is set it clears it and, unless a woken sleeper
// has not yet made its attempt (the woken flag; the waiters flag is
// then left set for the next release), sets the woken flag, bumps the
// wake sequence and reports that the caller should wake a sleeper. It
// is TakeWaiting, MarkWoken and BumpWake together.
func (p *Page) TakeWake() (wake bool, err error) {
	err = p.do(func() error {
		if atomic.LoadUint32(p.waiters()) == 0 || atomic.SwapUint32(p.waiters(), 0) == 0 {
			return nil
		}
		if atomic.SwapUint32(p.woken(), 1) != 0 {
			atomic.StoreUint32(p.waiters(), 1)
			return nil
		}
		atomic.AddUint32(p.WakeWord(), 1)
		wake = true
		return nil
	})
	return wake, err
}

// StoreEncoded is Store with a body that Encode wrote earlier of a
// record in state Released, for a release, whose record is known when
// the lock is taken: the release then only copies bytes. Like Store of
// a released record, it marks the page as released cleanly (see
// PublishFrom). The caller must hold the lock.
func (p *Page) StoreEncoded(body *[Size]byte, token uint64) error {
	return p.do(func() error {
		p.markReleased(p.writeTouched(token, func(b []byte) { copy(b, body[:]) }), token)
		return nil
	})
}
