//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package oslock

import "os"

// allocatePage gives the holder file's page real blocks by writing
// zeros beyond its end (see writeZeros). A file that already has its
// full size but is sparse (made by truncation) is left so: a store into
// it on a full file system is a fault, reported as ErrCorrupt.
func allocatePage(f *os.File) error { return writeZeros(f) }
