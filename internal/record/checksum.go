package record

import "hash/crc32"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum returns the CRC-32C (Castagnoli) of the concatenation of
// parts: the checksum of holder records and of guarded files.
func Checksum(parts ...[]byte) uint32 {
	var c uint32
	for _, p := range parts {
		c = crc32.Update(c, castagnoli, p)
	}
	return c
}

// Zero reports whether every byte of b is zero: reserved bytes are, in
// every format this module writes.
func Zero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroBody))
		if string(b[:n]) != string(zeroBody[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}
