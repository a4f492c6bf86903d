// Package guarded provides the guarded file: a file that holders of a
// lock replace as a whole and that anyone may read at any time, without
// the lock. It is the instruction file a background installer writes
// and a foreground poller shows.
//
//	installer, _ := lock.New("pcm-install")
//	f, err := guarded.Open(path, guarded.By(installer))
//	...
//	lease, err := installer.Acquire(ctx)
//	err = f.Write(lease, []byte("Office 97: installing\n"))
//
//	// In the poller, without the lock:
//	view, err := guarded.Open(path)
//	data, err := view.Read()
//
// The file reaches the lease only through its public methods (Name,
// Token, Lost, and Raw to commit while the lease is held), so it works
// with every backend, etcdlock's included.
//
// # What you can rely on
//
// A write replaces the file by renaming a complete new version over it,
// so a reader sees the old version or the new one, never a mixture or
// an empty file. A write that fails leaves the previous bytes and no
// temporary file; one that returns nil is durable (see File.Write).
//
// A write is fenced: it is refused with an error matching
// lock.ErrFenced, and changes nothing, if the lease is released, its
// lock was lost (Lease.Lost is closed), its token is lower than the
// token of the version in the file (a later lease has written since),
// or it belongs to another lock than the one named in the file or given
// with By. So a holder that paused, lost its lock and was superseded
// cannot overwrite what its successor wrote. The check is repeated just
// before the rename, but no file system offers a compare-and-swap on a
// rename: with a distributed backend, two holders writing at the same
// moment leave one of the two complete versions.
//
// Read needs no lease. A missing file is an error matching
// fs.ErrNotExist (nothing written yet); a file that fails any check of
// the format below is an error matching lock.ErrCorrupt and is never
// parsed. No "last good" copy is kept: a second copy on the same
// storage would double the cost of every write and survive only a
// program that wrote the file without this package. A holder repairs:
// Write replaces a damaged file, Update refuses it (it has no old
// version to pass on), and a non-empty file that does not start with
// the magic number is refused by both, in case the path names another
// program's file.
//
// The file has mode 0644 whatever the umask, so an unprivileged poller
// reads what a root service wrote; who may write is decided by who may
// create files in its directory. Put it in a directory that only the
// programs sharing it can write, not a sticky world-writable one such
// as /tmp: whoever can replace the file decides what readers see, and
// fencing protects against superseded holders, not other users.
//
// Tokens from the file and named-mutex backends are the wall clock in
// nanoseconds (see lock.Lease.Token), so a file copied from a machine
// whose clock runs ahead, or written before the clock was set back
// while the lock's holder file was lost, refuses writes until the clock
// passes its token; the error says how far ahead it is. To recover, an
// operator stops the writers, saves the payload (Read still works),
// removes the file and lets a writer write the payload back.
//
// # File format
//
// Version 1 (all integers are unsigned little endian; the file is
// exactly 104+L bytes):
//
//	off  len  field
//	  0    8  magic: 89 41 4C 47 0D 0A 1A 0A ("\x89ALG\r\n\x1a\n")
//	  8    1  format version: 1
//	  9    1  length n of the lock name, 1..64
//	 10    6  zero
//	 16    8  fencing token of the lease that wrote this version
//	 24    8  payload length L, at most MaxSize (64 MiB)
//	 32   64  lock name (n bytes, a valid lock name), then zeros
//	 96    4  CRC-32C (Castagnoli, as in iSCSI and ext4; the check value
//	          of "123456789" is e3069283) of bytes 0..95 followed by
//	          the L payload bytes
//	100    4  zero
//	104    L  payload
//
// A reader in another language checks, in this order: length ≥ 104,
// magic, version, the zero fields, n and the name, that the length is
// exactly 104+L, and the checksum; any failure means the file is
// corrupt. The high-bit first byte and the CR LF / ^Z / LF sequence
// catch a transfer that mangles binary or line endings, as in PNG.
//
// Writers create each version as a temporary file in the same
// directory, named ".BASE.agentlock-tmp-" followed by 16 hexadecimal
// digits (BASE is the guarded file's name), and rename it over the
// file. One left by a writer that died is removed by the next writer
// (see File.Write); readers should ignore such files.
package guarded
