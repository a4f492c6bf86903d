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
// A write is fenced by the lease's token: a holder that was superseded
// (it paused, its lock was lost, and another took it) cannot overwrite
// what its successor wrote. The file reaches the lease only through its
// public methods (Name, Token, Lost, and Raw to commit while the lease
// is held), so it works with every backend, etcdlock's included.
//
// Put the guarded file in a directory that only the programs sharing it
// can write (not a sticky world-writable one such as /tmp): the file's
// content is trusted, so whoever can create the file before the first
// write, or replace it, decides what readers see. Fencing protects
// against holders that have been superseded, not against other users.
// On Windows, where a directory cannot be synced, durability after a
// power loss rests on NTFS's journal.
//
// # Writing
//
// Every write (File.Write, File.Update) creates a new file and
// renames it over the old one:
//
//  1. read the current version and check the fencing rules below;
//  2. create a temporary file in the same directory, named
//     ".BASE.agentlock-tmp-" followed by 16 hexadecimal digits, where
//     BASE is the guarded file's name, with O_CREAT|O_EXCL|O_NOFOLLOW
//     and close-on-exec;
//  3. write the new version, fsync it, close it;
//  4. rename it over the guarded file (on Windows a POSIX-semantics
//     rename through SetFileInformationByHandle(FileRenameInfoEx), which
//     replaces a file that readers have open with FILE_SHARE_DELETE, as
//     Read opens it; where that is unsupported, MoveFileEx with
//     MOVEFILE_REPLACE_EXISTING, retried for up to 2 s while another
//     program has the file open);
//  5. fsync the directory, so that the rename survives a crash (on
//     Windows, which cannot sync a directory, NTFS's metadata journal
//     stands in; on file systems that refuse to sync a directory with
//     EINVAL or ENOTSUP the step is skipped).
//
// A reader therefore sees the old version or the new one, complete,
// never a mixture or an empty file. A write that fails at any step
// leaves the previous bytes exactly and no temporary file, and returns
// the error. An fsync error is returned as it is and never retried: a
// retried fsync can report success for data the kernel already dropped.
// If the directory fsync fails after the rename, the write is rolled
// back (the previous bytes are written back the same way, or the file
// removed if there was none) and the error returned; a reader may have
// seen the new version in between.
//
// The file is created with mode 0644 whatever the umask: everyone may
// read it (the unprivileged desktop poller reads what a root service
// wrote), and since it is only ever replaced, never written in place,
// who may write is decided by who may create files in its directory.
// Each write makes a new file owned by the writer, so a hard link to an
// old version keeps the old version and is harmless; a symbolic link,
// a directory or any other non-regular file at the path is refused
// (lock.ErrUnsafePath). On Windows the file
// gets the directory's inherited ACL.
//
// A writer killed in the middle of a write leaves its temporary file
// behind. Only a lease holder creates temporary files, so the next
// writer removes every file with the temporary prefix: on the first
// write through each File, and on every write with a lease that
// reports Abandoned (the previous holder died holding the lock, which
// is the only way a temporary file can be left behind).
//
// # Fencing
//
// Each version records the token of the lease that wrote it and the
// name of its lock. A write is refused with an error matching lock.ErrFenced,
// and changes nothing, if:
//
//   - the lease is released (the error also matches lock.ErrReleased);
//   - the lease's lock was lost (Lease.Lost is closed: a distributed
//     backend's session expired);
//   - the lease's token is lower than the token in the file: a later
//     lease has written since;
//   - the lease belongs to another lock than the one named in the file,
//     or than the Coordinator given with By.
//
// With a distributed backend the tokens are the engine's (etcd's
// revisions), which the file compares the same way; the rest of this
// paragraph is about the file and named-mutex backends.
// Tokens are the nanosecond wall clock at acquisition, or the previous
// token plus one if that is larger (see lock.Lease.Token), so a lease is
// naturally above every token the file has recorded. A file can carry a
// token from the future if the clock was set back while the lock's
// holder file was lost (the default lock directory is cleared at boot),
// or if the file was copied from a machine whose clock runs ahead. Its
// writes are refused until the clock passes the token, because nothing
// distinguishes that file from one written by a newer holder; the error
// says how far ahead the token is. To recover, an operator stops the
// writers, saves the payload (Read still works), removes the file, and
// lets a writer write the payload back.
//
// The check and the rename are not one atomic step: no file system
// offers a compare-and-swap on a rename. The check is made when the
// write starts and repeated (the file must be the very file that was
// checked, by identity, size and modification time) just before the
// rename. This refuses the write of a holder that was superseded and
// written over while it paused, which is what fencing is for; two
// holders writing at the same microsecond can only happen with a
// distributed backend whose session expired, and then the file keeps
// one of the two complete versions.
//
// # Reading
//
// Read returns one complete committed version and needs no lease. A
// missing file is an error matching fs.ErrNotExist (nothing has been
// written yet: the caller decides whether that means "no
// instructions"); Update treats it as empty and passes nil. A file that
// fails any check of the format below (truncated, bit flips, zero
// bytes, a file this package did not write) is an error matching
// lock.ErrCorrupt, never parsed.
//
// No "last good" copy is kept. With the write procedure above a damaged
// file means damaged storage or a program that wrote the file without
// this package, and a second copy on the same storage would double the
// cost of every write to survive only the second case. The reader
// reports; a holder repairs: Write replaces a damaged file (there is no
// trustworthy token in it to fence against), while Update refuses it,
// since it has no old version to pass on. A non-empty file that does not
// even start with the magic number is not taken for damage: Write
// refuses it too (lock.ErrCorrupt), in case the path names some other
// program's file, and an operator has to remove it.
//
// # File format
//
// Version 1 (all integers are unsigned little
// endian; the file is exactly 104+L bytes):
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
package guarded
