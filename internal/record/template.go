package record

import (
	"encoding/binary"
	"hash/crc32"
	"sync"
)

// A Template is the encoded record of one holder with its token and
// time left out. A process that takes a lock over and over publishes
// records that differ only in their state, token and time (the first
// 40 bytes of the body), so it stores the template with those patched
// in, and patches the checksum rather than computing it over the whole
// body again (see patchSum). A Template is not safe for concurrent use.
type Template struct {
	key  Record // the record encoded: State Held, Token and Since zero
	body [Size]byte
	sum  uint32 // the checksum in body
	ok   bool

	d [varying]byte // fill's scratch (a local would escape to the heap through crc32)
}

// set makes t the template of r's holder (r's State, Token and Since
// do not matter), checking r as Store does. It encodes only if the
// holder differs from the last one.
func (t *Template) set(r *Record) error {
	k := *r
	k.State, k.Token, k.Since = Held, 0, 0
	if t.ok && t.key == k {
		return nil
	}
	t.ok = false
	if err := check(&k); err != nil {
		return err
	}
	encode(t.body[:], &k)
	t.key, t.sum, t.ok = k, binary.LittleEndian.Uint32(t.body[crcOff:]), true
	return nil
}

// fill writes into b (Size bytes) the template's record with st, token
// and since, as encode would, and returns its checksum.
func (t *Template) fill(b []byte, st State, token uint64, since int64) uint32 {
	copy(b[:Size], t.body[:])
	d := t.d[:] // the first bytes of b XOR the template's
	clear(d)
	d[1] = byte(st ^ Held)
	binary.LittleEndian.PutUint64(d[8:], token)
	binary.LittleEndian.PutUint64(d[32:], uint64(since))
	sum := t.sum ^ patchSum(d)
	t.patch(b, st, token, since, sum)
	return sum
}

// patch writes st, token, since and the checksum sum into b, a copy of
// the template's body.
func (t *Template) patch(b []byte, st State, token uint64, since int64, sum uint32) {
	b[1] = byte(st)
	binary.LittleEndian.PutUint64(b[8:], token)
	binary.LittleEndian.PutUint64(b[32:], uint64(since))
	binary.LittleEndian.PutUint32(b[crcOff:], sum)
}

// releasedFlip is what the checksum of a held record changes by when
// its state becomes Released.
var releasedFlip = sync.OnceValue(func() uint32 {
	var d [varying]byte
	d[1] = byte(Held ^ Released)
	return patchSum(d[:])
})

// varying is how many bytes at the start of a body hold the fields
// that differ between the records of one holder (state, token, since).
const varying = 40

// patchSum returns what the checksum of a body changes by when the
// body's first varying bytes change by d (XOR) and the rest stays.
//
// CRC-32C without its initial and final inversion is linear over
// GF(2), and those inversions cancel between two messages of the same
// length, so Checksum(a) XOR Checksum(b) is the plain CRC of a XOR b.
// That is the plain CRC of d followed by the zeros of the unchanged
// rest: the CRC register after d, carried through crcOff-varying zero
// bytes, which is again linear in the register and is looked up a byte
// at a time (zeroShift).
func patchSum(d []byte) uint32 {
	s := ^crc32.Update(^uint32(0), castagnoli, d) // the plain CRC of d
	z := zeroShift()
	return z[0][byte(s)] ^ z[1][byte(s>>8)] ^ z[2][byte(s>>16)] ^ z[3][byte(s>>24)]
}

// zeroShift returns the tables of the linear map that carries a plain
// CRC-32C register through crcOff-varying zero bytes: entry [i][v] is
// the image of v<<(8i).
var zeroShift = sync.OnceValue(func() *[4][256]uint32 {
	var zeros [crcOff - varying]byte
	var bit [32]uint32
	for i := range bit {
		// Update inverts the register on the way in and out.
		bit[i] = ^crc32.Update(^uint32(1<<i), castagnoli, zeros[:])
	}
	z := new([4][256]uint32)
	for i := range z {
		for v := range 256 {
			for j := range 8 {
				if v&(1<<j) != 0 {
					z[i][v] ^= bit[8*i+j]
				}
			}
		}
	}
	return z
})
