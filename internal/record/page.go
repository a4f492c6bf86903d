package record

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync/atomic"
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
//	 12    4  waiters flag (non-zero: someone sleeps waiting for a release)
//	 64  384  record body (see package doc)
//
// Only the lock holder writes the body, so writers never race each
// other; readers that do not hold the lock use the sequence number to
// get a consistent copy and the body's checksum to reject anything
// else.
const PageSize = 4096

const (
	magic    = "AGLKHP01"
	seqOff   = 8
	waitOff  = 12
	bodyOff  = 64
	maxSpins = 1000
)

// Page is a view of a shared holder page, normally a memory mapping of
// the holder file. Any method may return an error wrapping a fault if
// the underlying file shrank under the mapping.
type Page struct {
	b []byte
}

// NewPage returns a Page over b, which must be PageSize bytes long
// and 8-byte aligned (a memory mapping is).
func NewPage(b []byte) *Page {
	if len(b) != PageSize || uintptr(unsafe.Pointer(&b[0]))%8 != 0 {
		panic("record: bad page")
	}
	return &Page{b: b}
}

func (p *Page) seq() *uint32     { return (*uint32)(unsafe.Pointer(&p.b[seqOff])) }
func (p *Page) waiters() *uint32 { return (*uint32)(unsafe.Pointer(&p.b[waitOff])) }

// ErrFault reports that the mapped file could not be accessed (for
// example because another process truncated it).
var ErrFault = errors.New("holder page is not accessible")

// guard turns a memory fault while touching the mapping into an error
// instead of a crash of the whole process.
func guard(err *error) {
	if r := recover(); r != nil {
		if re, ok := r.(runtime.Error); ok && isFault(re) {
			*err = fmt.Errorf("%w: %v", ErrFault, re)
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
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	var body [Size]byte
	for i := 0; ; i++ {
		s1 := atomic.LoadUint32(p.seq())
		if s1&1 != 0 && i < maxSpins {
			runtime.Gosched()
			continue
		}
		head := string(p.b[:8])
		copy(body[:], p.b[bodyOff:bodyOff+Size])
		if atomic.LoadUint32(p.seq()) != s1 && i < maxSpins {
			continue
		}
		switch head {
		case magic:
		case "\x00\x00\x00\x00\x00\x00\x00\x00":
			if s1 == 0 && allZero(body[:]) {
				return Record{}, nil
			}
			fallthrough
		default:
			return Record{}, fmt.Errorf("%w: foreign page header %q", ErrCorrupt, head)
		}
		return Decode(body[:])
	}
}

// Store replaces the record. The caller must hold the lock.
func (p *Page) Store(r *Record) (err error) {
	var body [Size]byte
	if err := Encode(body[:], r); err != nil {
		return err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	s := atomic.LoadUint32(p.seq())
	atomic.StoreUint32(p.seq(), (s|1)+0) // odd: write in progress
	if string(p.b[:8]) != magic {
		copy(p.b[:8], magic)
	}
	copy(p.b[bodyOff:bodyOff+Size], body[:])
	atomic.StoreUint32(p.seq(), (s|1)+1)
	return nil
}

// SetWaiting records that a process is about to sleep until the lock
// is released. A releaser that finds the flag set clears it and wakes
// the sleepers (see TakeWaiting).
func (p *Page) SetWaiting() (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	if atomic.LoadUint32(p.waiters()) == 0 {
		atomic.StoreUint32(p.waiters(), 1)
	}
	return nil
}

// TakeWaiting clears the waiters flag and reports whether it was set.
func (p *Page) TakeWaiting() (set bool, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	if atomic.LoadUint32(p.waiters()) == 0 {
		return false, nil
	}
	return atomic.SwapUint32(p.waiters(), 0) != 0, nil
}
