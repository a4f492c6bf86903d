package guarded

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/agentlock/agentlock/internal/record"
	"github.com/agentlock/agentlock/lock"
)

// MaxSize is the largest payload a guarded file holds, in bytes.
// Write and Update refuse larger data; Read reports a larger file as
// corrupt without reading it.
const MaxSize = 64 << 20

const (
	guardedMagic      = "\x89ALG\r\n\x1a\n"
	guardedFormat     = 1
	guardedHeaderSize = 104
	guardedCRCOff     = 96
	guardedTempInfix  = ".agentlock-tmp-"
)

// A File is a file read by anyone and replaced only by holders of a
// lock, atomically and with fencing: the shared instruction file. The
// package documentation gives the fencing rules and the on-disk format,
// and Write the write procedure. A File is safe for concurrent use;
// writes through one File are serialized.
type File struct {
	path     string // absolute
	dir      string
	base     string
	lockName string // from By, or ""
	ops      guardedOps

	mu      sync.Mutex // serializes writes through this File
	cleaned bool       // stale temporary files removed once
}

// An Option configures Open.
type Option struct {
	name  string
	apply func(*File) error
}

// By restricts writes to leases of c's lock: a lease of another
// lock name is refused with an error matching lock.ErrFenced, even for the
// first write. Without it the first write decides which lock guards
// the file (its name is recorded in the file), and later writes with
// leases of other names are refused. Leases are matched by lock name:
// two coordinators of one name on different lock directories are
// different locks that this check cannot tell apart.
func By(c *lock.Coordinator) Option {
	return Option{name: "By", apply: func(g *File) error {
		if c == nil {
			return fmt.Errorf("nil Coordinator")
		}
		g.lockName = c.Name()
		return nil
	}}
}

// guardedOps are the steps of a commit that can fail. Tests replace
// them on one File to inject faults.
type guardedOps struct {
	write   func(f *os.File, b []byte) (int, error)
	sync    func(f *os.File) error
	rename  func(oldpath, newpath string) error
	syncDir func(dir string) error
}

var defaultGuardedOps = guardedOps{
	write:   (*os.File).Write,
	sync:    (*os.File).Sync,
	rename:  guardedRename,
	syncDir: guardedSyncDir,
}

// Open returns the guarded file at path. The file need not exist; the
// first Write creates it. Its directory must exist and pass the checks
// of a lock directory (lock.NewFileBackend: not a symbolic link, owned
// by root or the caller, sticky if others may write it), and path must
// not name a symbolic link, a directory or anything but a regular file;
// such a path is an error matching lock.ErrUnsafePath. Open keeps
// nothing open.
func Open(path string, opts ...Option) (*File, error) {
	if path == "" {
		return nil, &fs.PathError{Op: "open guarded", Path: path, Err: errors.New("empty path")}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &fs.PathError{Op: "open guarded", Path: path, Err: err}
	}
	g := &File{path: abs, dir: filepath.Dir(abs), base: filepath.Base(abs), ops: defaultGuardedOps}
	for _, o := range opts {
		if o.apply == nil {
			return nil, fmt.Errorf("guarded: Open: %w: zero Option", lock.ErrInvalidOption)
		}
		if err := o.apply(g); err != nil {
			return nil, fmt.Errorf("guarded: Open: %w: %s: %v", lock.ErrInvalidOption, o.name, err)
		}
	}
	// The directory must pass the checks of a lock directory, which
	// the file backend makes.
	if _, err := lock.NewFileBackend(g.dir); err != nil {
		// The error speaks of a lock directory; say which file it was for.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = fmt.Errorf("directory %s: %w", pe.Path, pe.Err)
		}
		return nil, &fs.PathError{Op: "open guarded", Path: abs, Err: err}
	}
	st, err := os.Lstat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, &fs.PathError{Op: "open guarded", Path: abs, Err: err}
	case st.Mode()&fs.ModeSymlink != 0:
		return nil, &fs.PathError{Op: "open guarded", Path: abs, Err: fmt.Errorf("%w: is a symbolic link", lock.ErrUnsafePath)}
	case st.IsDir():
		return nil, &fs.PathError{Op: "open guarded", Path: abs, Err: fmt.Errorf("%w: is a directory", lock.ErrUnsafePath)}
	case !st.Mode().IsRegular():
		return nil, &fs.PathError{Op: "open guarded", Path: abs, Err: fmt.Errorf("%w: not a regular file", lock.ErrUnsafePath)}
	}
	return g, nil
}

// Path returns the absolute path of the file.
func (g *File) Path() string { return g.path }

// Read returns the payload of the current version. It needs no lease
// and never waits: it opens the file, reads it whole and checks it.
// A missing file is an error matching fs.ErrNotExist; a damaged one an
// error matching lock.ErrCorrupt.
func (g *File) Read() ([]byte, error) {
	data, _, err := g.ReadToken()
	return data, err
}

// ReadToken is Read that also returns the fencing token of the lease
// that wrote the version.
func (g *File) ReadToken() (data []byte, token uint64, err error) {
	raw, _, err := g.readRaw("read guarded")
	if err != nil {
		return nil, 0, err
	}
	v, err := decodeGuarded(raw)
	if err != nil {
		return nil, 0, &fs.PathError{Op: "read guarded", Path: g.path, Err: err}
	}
	return v.payload, v.token, nil
}

// Write replaces the file's content with data under lease. It returns
// an error matching lock.ErrFenced if the lease may not write (see the
// package documentation: released, superseded, another lock), and the
// file is then unchanged, as it is after any failed write. When Write
// returns nil the new version is durable.
//
// Write replaces a damaged file (one that fails its checks but starts
// with the magic number, or is empty); it refuses a file that is not a
// guarded file at all with an error matching lock.ErrCorrupt.
//
// A write checks the fencing rules, creates a temporary file in the
// file's directory (O_EXCL, O_NOFOLLOW, close-on-exec), writes and
// fsyncs it, renames it over the file and fsyncs the directory. On
// Windows the rename is a POSIX-semantics rename, which replaces a file
// that readers have open; where that is unsupported, MoveFileEx,
// retried for up to 2 s while another program has the file open. A
// directory that cannot be synced (Windows, or EINVAL or ENOTSUP) is
// taken to make renames durable by other means, such as NTFS's journal.
// An fsync error is returned and never retried, since a retried fsync
// can report success for data the kernel dropped. If the directory
// fsync fails after the rename, the previous version is written back
// the same way (or the file removed if there was none), and a reader
// may have seen the new version in between. Temporary files left by a
// writer that died are removed on the first write through each File
// and on every write with a lease that reports Abandoned.
func (g *File) Write(lease *lock.Lease, data []byte) error {
	return g.commit(lease, "write guarded", true, func([]byte) ([]byte, error) { return data, nil })
}

// Update replaces the file's content with fn(old) under lease, where
// old is the current payload (nil if the file does not exist). fn runs
// once, outside Lease.Raw, so it may call lease.SetPurpose; it must not
// write through g, which would deadlock. If fn returns an error, Update
// returns it unchanged and writes nothing. A damaged file is an error
// matching lock.ErrCorrupt and fn is not called; fencing and failures
// are as for Write.
func (g *File) Update(lease *lock.Lease, fn func(old []byte) ([]byte, error)) error {
	if fn == nil {
		return &fs.PathError{Op: "update guarded", Path: g.path, Err: fmt.Errorf("%w: nil function", lock.ErrInvalidOption)}
	}
	return g.commit(lease, "update guarded", false, fn)
}

func (g *File) fenced(op, format string, args ...any) error {
	return &fs.PathError{Op: op, Path: g.path, Err: fmt.Errorf("%w: "+format, append([]any{lock.ErrFenced}, args...)...)}
}

// commit makes one write. With repair (Write) a damaged file is
// replaced; without (Update) it is an error.
func (g *File) commit(l *lock.Lease, op string, repair bool, fn func(old []byte) ([]byte, error)) error {
	if l == nil {
		return g.fenced(op, "nil lease")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.mayWrite(op, l); err != nil {
		return err
	}
	if g.lockName != "" && l.Name() != g.lockName {
		return g.fenced(op, "lease of lock %s, but the file is guarded by lock %s", l.Name(), g.lockName)
	}
	cur, err := g.current(op, l, repair)
	if err != nil {
		return err
	}
	data, err := fn(cur.payload)
	if err != nil {
		return err
	}
	enc, err := g.encode(op, l, data)
	if err != nil {
		return err
	}
	if !g.cleaned || l.Abandoned() {
		g.removeStaleTemps()
		g.cleaned = true
	}
	tmp, err := g.writeTemp(enc)
	if err != nil {
		return &fs.PathError{Op: op, Path: g.path, Err: err}
	}
	return g.install(op, l, tmp, cur)
}

// mayWrite returns the error for a lease that may no longer write: one
// that was released or whose lock was lost (Lease.Lost).
func (g *File) mayWrite(op string, l *lock.Lease) error {
	return g.whileHeld(op, l, func() error { return nil })
}

// whileHeld runs f while l is held (see Lease.Raw), if l's lock was not
// lost: Release cannot complete in the middle of f.
func (g *File) whileHeld(op string, l *lock.Lease, f func() error) error {
	ran := false
	err := l.Raw(func(lock.Grant) error {
		ran = true
		select {
		case <-l.Lost(): // a nil channel (cannot tell) never fires
			return g.fenced(op, "lease of lock %s: the lock was lost (Lease.Lost)", l.Name())
		default:
			return f()
		}
	})
	if !ran { // Raw refuses only a released lease
		return &fs.PathError{Op: op, Path: g.path, Err: fmt.Errorf("%w: lease of lock %s: %w", lock.ErrFenced, l.Name(), lock.ErrReleased)}
	}
	return err
}

// A snapshot is the file as a write found it before writing.
type snapshot struct {
	raw     []byte      // the whole file
	st      fs.FileInfo // its identity, for unchanged
	exists  bool
	payload []byte // nil if the file is missing or damaged
}

// current reads the file a write is about to replace and checks that l
// may replace it. With repair a damaged guarded file is accepted (and
// has no payload).
func (g *File) current(op string, l *lock.Lease, repair bool) (snapshot, error) {
	raw, st, err := g.readRaw(op)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return snapshot{}, nil
	case err != nil:
		return snapshot{}, err
	}
	cur := snapshot{raw: raw, st: st, exists: true}
	v, err := decodeGuarded(raw)
	if err != nil {
		if !repair || (len(raw) > 0 && !strings.HasPrefix(string(raw), guardedMagic)) {
			return snapshot{}, &fs.PathError{Op: op, Path: g.path, Err: err}
		}
		return cur, nil // a damaged guarded file: Write repairs it
	}
	if err := g.supersedes(op, l, v); err != nil {
		return snapshot{}, err
	}
	cur.payload = v.payload
	return cur, nil
}

// supersedes returns nil if l may replace version v: it is of the same
// lock, with a token no lower than v's.
func (g *File) supersedes(op string, l *lock.Lease, v guardedVersion) error {
	if v.name != l.Name() {
		return g.fenced(op, "lease of lock %s, but the file was written under lock %s", l.Name(), v.name)
	}
	t := l.Token()
	if t >= v.token {
		return nil
	}
	if now := uint64(time.Now().UnixNano()); v.token > now {
		return g.fenced(op, "the file carries token %d from the future (%s ahead of this machine's clock), above this lease's token %d: "+
			"the clock was set back, the file came from another machine, or the lock's holder file was tampered with; "+
			"to recover, stop the writers, save the payload (Read), remove the file and write the payload back",
			v.token, ahead(v.token-now), t)
	}
	return g.fenced(op, "the file carries token %d from a later lease, above this lease's token %d: a later holder of lock %s has written it", v.token, t, l.Name())
}

// encode returns the file that holds data written under l.
func (g *File) encode(op string, l *lock.Lease, data []byte) ([]byte, error) {
	if len(data) > MaxSize {
		return nil, &fs.PathError{Op: op, Path: g.path, Err: fmt.Errorf("payload of %d bytes is larger than MaxSize (%d)", len(data), MaxSize)}
	}
	enc, err := encodeGuarded(guardedVersion{token: l.Token(), name: l.Name(), payload: data})
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: g.path, Err: err}
	}
	return enc, nil
}

// install renames the temporary file tmp over the file, if l may still
// write and the file is still cur, and makes the rename durable. This
// is the commit point: it runs while l is held, so a write either
// commits before Release returns or is refused. On failure tmp is
// removed and the file is as it was.
func (g *File) install(op string, l *lock.Lease, tmp string, cur snapshot) error {
	err := g.whileHeld(op, l, func() error {
		if !g.unchanged(cur.st, cur.exists) {
			return g.fenced(op, "the file was replaced by another writer during the write")
		}
		if err := g.ops.rename(tmp, g.path); err != nil {
			return &fs.PathError{Op: op, Path: g.path, Err: err}
		}
		if err := g.ops.syncDir(g.dir); err != nil {
			return &fs.PathError{Op: op, Path: g.path, Err: fmt.Errorf("sync directory: %w (%s)", err, g.rollback(cur.raw, cur.exists))}
		}
		return nil
	})
	if err != nil {
		os.Remove(tmp) // gone already if the rename succeeded
	}
	return err
}

// unchanged reports whether the file is still the one read at the
// start of the write (or still missing).
func (g *File) unchanged(before fs.FileInfo, existed bool) bool {
	st, err := os.Lstat(g.path)
	if !existed {
		return errors.Is(err, fs.ErrNotExist)
	}
	return err == nil && os.SameFile(before, st) && st.Size() == before.Size() && st.ModTime().Equal(before.ModTime())
}

// rollback puts back the version that was there before a write whose
// directory sync failed, and says how that went.
func (g *File) rollback(raw []byte, existed bool) string {
	if !existed {
		if err := os.Remove(g.path); err != nil {
			return fmt.Sprintf("removing the new version failed: %v", err)
		}
	} else {
		tmp, err := g.writeTemp(raw)
		if err != nil {
			return fmt.Sprintf("restoring the previous version failed: %v", err)
		}
		if err := g.ops.rename(tmp, g.path); err != nil {
			os.Remove(tmp)
			return fmt.Sprintf("restoring the previous version failed: %v", err)
		}
	}
	if err := g.ops.syncDir(g.dir); err != nil {
		return fmt.Sprintf("previous version restored, but syncing the directory again failed: %v", err)
	}
	return "previous version restored"
}

// writeTemp writes b to a new temporary file beside the guarded file,
// syncs and closes it, and returns its path. On failure nothing is left.
func (g *File) writeTemp(b []byte) (string, error) {
	var f *os.File
	var tmp string
	for range 10 {
		tmp = filepath.Join(g.dir, "."+g.base+guardedTempInfix+fmt.Sprintf("%016x", rand.Uint64()))
		var err error
		f, err = guardedCreateTemp(tmp)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	if f == nil {
		return "", fmt.Errorf("create temporary file: %w", fs.ErrExist)
	}
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(tmp)
		return "", err
	}
	n, err := g.ops.write(f, b)
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fail(fmt.Errorf("write temporary file: %w", err))
	}
	if err := g.ops.sync(f); err != nil {
		return fail(fmt.Errorf("sync temporary file: %w", err))
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("close temporary file: %w", err)
	}
	return tmp, nil
}

// removeStaleTemps removes temporary files left by writers that died.
// Only a lease holder calls it, and only lease holders create temporary
// files, so none of them is in use.
func (g *File) removeStaleTemps() {
	ents, err := os.ReadDir(g.dir)
	if err != nil {
		return
	}
	prefix := "." + g.base + guardedTempInfix
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) && e.Type().IsRegular() {
			os.Remove(filepath.Join(g.dir, e.Name()))
		}
	}
}

// readRaw reads the whole file, with its identity for unchanged. Its
// errors name op, the operation of the caller (a read, a write or an
// update).
func (g *File) readRaw(op string) ([]byte, fs.FileInfo, error) {
	f, err := guardedOpenRead(g.path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, nil, &fs.PathError{Op: op, Path: g.path, Err: pe.Err}
		}
		return nil, nil, &fs.PathError{Op: op, Path: g.path, Err: err}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, &fs.PathError{Op: op, Path: g.path, Err: err}
	}
	if !st.Mode().IsRegular() {
		return nil, nil, &fs.PathError{Op: op, Path: g.path, Err: fmt.Errorf("%w: not a regular file", lock.ErrUnsafePath)}
	}
	if st.Size() > guardedHeaderSize+MaxSize {
		return nil, nil, &fs.PathError{Op: op, Path: g.path, Err: fmt.Errorf("%w: %d bytes, larger than any guarded file", lock.ErrCorrupt, st.Size())}
	}
	// The file is never written in place, so its size is stable; a
	// file that is (by some other program) shows up as corrupt.
	raw := make([]byte, st.Size())
	if _, err := io.ReadFull(f, raw); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: shrank while being read", lock.ErrCorrupt)
		}
		return nil, nil, &fs.PathError{Op: op, Path: g.path, Err: err}
	}
	return raw, st, nil
}

// guardedVersion is one decoded version of a guarded file.
type guardedVersion struct {
	token   uint64
	name    string
	payload []byte
}

// guardedCRC returns the checksum of the file b: of everything but the
// checksum field and the reserved bytes after it.
func guardedCRC(b []byte) uint32 {
	return record.Checksum(b[:guardedCRCOff], b[guardedHeaderSize:])
}

// encodeGuarded returns the file for v.
func encodeGuarded(v guardedVersion) ([]byte, error) {
	if !lock.ValidName(v.name) {
		return nil, fmt.Errorf("%w: %q", lock.ErrInvalidName, v.name)
	}
	if len(v.payload) > MaxSize {
		return nil, fmt.Errorf("payload of %d bytes is larger than MaxSize (%d)", len(v.payload), MaxSize)
	}
	b := make([]byte, guardedHeaderSize+len(v.payload))
	copy(b, guardedMagic)
	b[8] = guardedFormat
	b[9] = byte(len(v.name))
	binary.LittleEndian.PutUint64(b[16:], v.token)
	binary.LittleEndian.PutUint64(b[24:], uint64(len(v.payload)))
	copy(b[32:96], v.name)
	copy(b[guardedHeaderSize:], v.payload)
	binary.LittleEndian.PutUint32(b[guardedCRCOff:], guardedCRC(b))
	return b, nil
}

// decodeGuarded checks b and returns the version it holds. Every error
// matches lock.ErrCorrupt. The payload aliases b.
func decodeGuarded(b []byte) (guardedVersion, error) {
	bad := func(format string, args ...any) (guardedVersion, error) {
		return guardedVersion{}, fmt.Errorf("%w: "+format, append([]any{lock.ErrCorrupt}, args...)...)
	}
	switch {
	case len(b) == 0:
		return bad("empty file")
	case len(b) < guardedHeaderSize && !strings.HasPrefix(guardedMagic, string(b[:min(len(b), len(guardedMagic))])):
		return bad("not a guarded file (no magic number)")
	case len(b) < guardedHeaderSize:
		return bad("truncated: %d bytes, shorter than the %d-byte header", len(b), guardedHeaderSize)
	case string(b[:8]) != guardedMagic:
		return bad("not a guarded file (no magic number)")
	case b[8] != guardedFormat:
		return bad("format version %d, want %d", b[8], guardedFormat)
	}
	n := int(b[9])
	if n == 0 || n > lock.MaxNameLen {
		return bad("lock name length %d", n)
	}
	if !record.Zero(b[10:16]) || !record.Zero(b[32+n:96]) || !record.Zero(b[100:104]) {
		return bad("reserved bytes are not zero")
	}
	name := string(b[32 : 32+n])
	if !lock.ValidName(name) {
		return bad("invalid lock name %q", name)
	}
	l := binary.LittleEndian.Uint64(b[24:])
	if l > MaxSize {
		return bad("payload length %d is larger than MaxSize", l)
	}
	if have := uint64(len(b) - guardedHeaderSize); have != l {
		if have < l {
			return bad("truncated: payload of %d bytes, header says %d", have, l)
		}
		return bad("%d bytes after the payload", have-l)
	}
	if want, got := binary.LittleEndian.Uint32(b[guardedCRCOff:]), guardedCRC(b); want != got {
		return bad("checksum mismatch (stored %08x, computed %08x)", want, got)
	}
	return guardedVersion{
		token:   binary.LittleEndian.Uint64(b[16:]),
		name:    name,
		payload: b[guardedHeaderSize:],
	}, nil
}

// ahead formats how far a token is ahead of the clock.
func ahead(ns uint64) string {
	const year = uint64(365.25 * 24 * float64(time.Hour))
	if ns >= 2*year {
		return fmt.Sprintf("about %d years", ns/year)
	}
	return time.Duration(ns).Round(time.Second).String()
}
