// Package record encodes and decodes agentlock holder records.
//
// A holder record is a fixed-size body of [Size] bytes:
//
//	off  len  field
//	  0    1  version (1)
//	  1    1  state: 0 empty, 1 held, 2 released
//	  2    1  length of host (≤ MaxHost)
//	  3    1  zero
//	  4    2  length of purpose, little endian (≤ MaxPurpose)
//	  6    2  zero
//	  8    8  token, little endian
//	 16    8  pid, little endian
//	 24    8  process start stamp (platform-specific, opaque)
//	 32    8  since, Unix nanoseconds, little endian
//	 40   16  boot id (platform-specific, opaque; zero if unknown)
//	 56   64  host, zero padded
//	120  256  purpose (UTF-8), zero padded
//	376    4  CRC-32C (Castagnoli) of bytes 0..375, little endian
//	380    4  zero
//
// Every byte is covered by the checksum or required to be zero, so a
// body that decodes re-encodes to exactly the same bytes. An all-zero
// body is the valid empty record (a fresh file).
package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

const (
	// Size is the encoded size of a record body.
	Size = 384
	// MaxHost is the longest host name a record stores.
	MaxHost = 64
	// MaxPurpose is the longest purpose, in bytes, a record stores.
	MaxPurpose = 256

	version = 1
	crcOff  = 376
)

// State says what a record describes.
type State uint8

const (
	Empty    State = iota // never written
	Held                  // written by a holder that has not released
	Released              // written by a holder when it released
)

// Record is the decoded form of a holder record.
type Record struct {
	State   State
	Token   uint64
	PID     int64
	Start   uint64
	Since   int64
	Boot    [16]byte
	Host    string
	Purpose string
}

// ErrCorrupt reports a body that is not a record written by this package.
var ErrCorrupt = errors.New("corrupt holder record")

// Encode writes r into b, which must be at least Size bytes long.
// It fails only if a string field is too long or not UTF-8.
func Encode(b []byte, r *Record) error {
	if err := check(r); err != nil {
		return err
	}
	encode(b[:Size], r)
	return nil
}

func check(r *Record) error {
	if len(r.Host) > MaxHost {
		return fmt.Errorf("host name is %d bytes, longer than %d", len(r.Host), MaxHost)
	}
	if err := CheckPurpose(r.Purpose); err != nil {
		return err
	}
	if !utf8.ValidString(r.Host) {
		return errors.New("host name is not valid UTF-8")
	}
	if r.State > Released || (r.State == Empty && *r != (Record{})) {
		return fmt.Errorf("invalid state %d", r.State)
	}
	return nil
}

// encode writes a checked record into b (Size bytes).
func encode(b []byte, r *Record) {
	clear(b)
	if r.State == Empty {
		return
	}
	b[0] = version
	b[1] = byte(r.State)
	b[2] = byte(len(r.Host))
	binary.LittleEndian.PutUint16(b[4:], uint16(len(r.Purpose)))
	binary.LittleEndian.PutUint64(b[8:], r.Token)
	binary.LittleEndian.PutUint64(b[16:], uint64(r.PID))
	binary.LittleEndian.PutUint64(b[24:], r.Start)
	binary.LittleEndian.PutUint64(b[32:], uint64(r.Since))
	copy(b[40:56], r.Boot[:])
	copy(b[56:120], r.Host)
	copy(b[120:376], r.Purpose)
	binary.LittleEndian.PutUint32(b[crcOff:], Checksum(b[:crcOff]))
}

// CheckPurpose reports whether p can be stored in a record.
func CheckPurpose(p string) error {
	if len(p) > MaxPurpose {
		return fmt.Errorf("purpose is %d bytes, longer than %d", len(p), MaxPurpose)
	}
	if !utf8.ValidString(p) {
		return errors.New("purpose is not valid UTF-8")
	}
	for i := 0; i < len(p); i++ {
		if p[i] == 0 {
			return errors.New("purpose contains a NUL byte")
		}
	}
	return nil
}

// Decode parses a record body. Any body that is not exactly what
// Encode produces yields an error matching ErrCorrupt.
func Decode(b []byte) (Record, error) {
	st, tok, err := peek(b)
	if err != nil || st == Empty {
		return Record{}, err
	}
	hl := int(b[2])
	pl := int(binary.LittleEndian.Uint16(b[4:]))
	r := Record{
		State:   st,
		Token:   tok,
		PID:     int64(binary.LittleEndian.Uint64(b[16:])),
		Start:   binary.LittleEndian.Uint64(b[24:]),
		Since:   int64(binary.LittleEndian.Uint64(b[32:])),
		Host:    string(b[56 : 56+hl]),
		Purpose: string(b[120 : 120+pl]),
	}
	copy(r.Boot[:], b[40:56])
	if CheckPurpose(r.Purpose) != nil || !utf8.ValidString(r.Host) {
		return Record{}, fmt.Errorf("%w: invalid text", ErrCorrupt)
	}
	return r, nil
}

// peek checks everything but the text fields' encoding and returns the
// state and token, without allocating.
func peek(b []byte) (State, uint64, error) {
	if len(b) != Size {
		return 0, 0, fmt.Errorf("%w: %d bytes, want %d", ErrCorrupt, len(b), Size)
	}
	if Zero(b) {
		return Empty, 0, nil
	}
	if b[0] != version {
		return 0, 0, fmt.Errorf("%w: version %d", ErrCorrupt, b[0])
	}
	if got, want := binary.LittleEndian.Uint32(b[crcOff:]), Checksum(b[:crcOff]); got != want {
		return 0, 0, fmt.Errorf("%w: checksum %#08x, want %#08x", ErrCorrupt, got, want)
	}
	st := State(b[1])
	hl := int(b[2])
	pl := int(binary.LittleEndian.Uint16(b[4:]))
	if st == Empty || st > Released || hl > MaxHost || pl > MaxPurpose ||
		b[3] != 0 || b[6] != 0 || b[7] != 0 || !Zero(b[380:]) ||
		!Zero(b[56+hl:120]) || !Zero(b[120+pl:376]) {
		return 0, 0, fmt.Errorf("%w: invalid layout", ErrCorrupt)
	}
	return st, binary.LittleEndian.Uint64(b[8:]), nil
}
