package guarded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeGrant is a lock.Grant with a chosen token, for building leases whose
// token the test decides (a superseded holder, a clock set back).
type fakeGrant struct{ token uint64 }

func (g fakeGrant) Holder() lock.Holder             { return lock.Holder{Token: g.token} }
func (g fakeGrant) Abandoned() bool                 { return false }
func (g fakeGrant) SetPurpose(purpose string) error { return nil }
func (g fakeGrant) Release() error                  { return nil }
func (g fakeGrant) Lost() <-chan struct{}           { return nil }

func fakeLease(t testing.TB, name string, token uint64) *lock.Lease {
	return leaseOf(t, name, fakeGrant{token})
}

// grantBackend is a Backend that grants every lock at once with g.
type grantBackend struct{ g lock.Grant }

func (b grantBackend) Acquire(context.Context, lock.Request) (lock.Grant, error) { return b.g, nil }

func (b grantBackend) Holder(context.Context, string) (lock.Holder, error) {
	return lock.Holder{}, lock.ErrNotHeld
}

// leaseOf returns a lease of the lock name whose grant is g.
func leaseOf(t testing.TB, name string, g lock.Grant) *lock.Lease {
	t.Helper()
	c, err := lock.New(name, lock.WithBackend(grantBackend{g}))
	require.NoError(t, err)
	return acquire(t, c)
}

// guardedFixture returns a coordinator on its own lock directory and a
// guarded file in another directory.
func guardedFixture(t testing.TB, name string) (*lock.Coordinator, *File) {
	t.Helper()
	c, err := lock.New(name, lock.WithDir(proctest.TempDir(t)))
	require.NoError(t, err)
	g, err := Open(filepath.Join(proctest.TempDir(t), "instructions"))
	require.NoError(t, err)
	return c, g
}

func acquire(t testing.TB, c *lock.Coordinator) *lock.Lease {
	t.Helper()
	l, err := c.Acquire(context.Background())
	require.NoError(t, err)
	return l
}

// tempFiles lists the temporary files beside g's file.
func tempFiles(t testing.TB, g *File) []string {
	t.Helper()
	ents, err := os.ReadDir(g.dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		if strings.Contains(e.Name(), guardedTempInfix) {
			names = append(names, e.Name())
		}
	}
	return names
}

func TestGuardedReadWriteUpdate(t *testing.T) {
	c, g := guardedFixture(t, "guarded-rw")

	_, err := g.Read()
	assert.ErrorIs(t, err, fs.ErrNotExist, "Read of a file never written")

	l := acquire(t, c)
	defer l.Release()
	require.NoError(t, g.Update(l, func(old []byte) ([]byte, error) {
		assert.Nil(t, old, "Update of a missing file passes nil")
		return []byte("step 1"), nil
	}))
	data, tok, err := g.ReadToken()
	require.NoError(t, err)
	assert.Equal(t, "step 1", string(data))
	assert.Equal(t, l.Token(), tok)

	require.NoError(t, g.Update(l, func(old []byte) ([]byte, error) {
		return append(old, ", step 2"...), nil
	}))
	data, err = g.Read()
	require.NoError(t, err)
	assert.Equal(t, "step 1, step 2", string(data))

	// An error from fn is returned as it is, and nothing is written.
	boom := errors.New("boom")
	assert.Same(t, boom, g.Update(l, func([]byte) ([]byte, error) { return []byte("no"), boom }))
	data, err = g.Read()
	require.NoError(t, err)
	assert.Equal(t, "step 1, step 2", string(data))

	// An empty payload is a valid version.
	require.NoError(t, g.Write(l, nil))
	data, err = g.Read()
	require.NoError(t, err)
	assert.Empty(t, data)

	st, err := os.Stat(g.Path())
	require.NoError(t, err)
	if os.PathSeparator == '/' {
		assert.Equal(t, fs.FileMode(0o644), st.Mode().Perm())
	}
	assert.Empty(t, tempFiles(t, g))
}

func TestGuardedOpenRefusesUnsafePaths(t *testing.T) {
	dir := proctest.TempDir(t)
	_, err := Open(dir)
	assert.ErrorIs(t, err, lock.ErrUnsafePath, "a directory")

	target := filepath.Join(dir, "target")
	require.NoError(t, os.WriteFile(target, nil, 0o644))
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Logf("no symbolic links here: %v", err)
	} else if underWine() {
		// Wine 8 makes a Unix symbolic link, follows it like any
		// Unix file name and reports no reparse point for it.
		t.Log("Wine: symbolic links are not reparse points; not checked")
	} else {
		_, err = Open(link)
		assert.ErrorIs(t, err, lock.ErrUnsafePath, "a symbolic link")
	}

	_, err = Open("")
	assert.Error(t, err)
	_, err = Open(filepath.Join(dir, "missing-dir", "f"))
	assert.ErrorIs(t, err, fs.ErrNotExist)
	_, err = Open(filepath.Join(dir, "f"), By(nil))
	assert.ErrorIs(t, err, lock.ErrInvalidOption)
}

func TestGuardedFencedAfterRelease(t *testing.T) {
	c, g := guardedFixture(t, "guarded-release")
	a := acquire(t, c)
	require.NoError(t, g.Write(a, []byte("from A")))
	require.NoError(t, a.Release())
	b := acquire(t, c)
	require.NoError(t, g.Write(b, []byte("from B")))
	want, err := os.ReadFile(g.Path())
	require.NoError(t, err)

	for i := 0; i < 1000; i++ {
		err := g.Write(a, []byte("stale A"))
		if !errors.Is(err, lock.ErrFenced) || !errors.Is(err, lock.ErrReleased) {
			t.Fatalf("try %d: Write with a released lease = %v, want lock.ErrFenced and lock.ErrReleased", i, err)
		}
	}
	err = g.Update(a, func([]byte) ([]byte, error) { t.Fatal("fn called for a released lease"); return nil, nil })
	assert.ErrorIs(t, err, lock.ErrFenced)
	got, err := os.ReadFile(g.Path())
	require.NoError(t, err)
	assert.Equal(t, want, got, "the file is unchanged")
	require.NoError(t, b.Release())
}

// lostGrant is a fakeGrant whose lock can be lost, as a distributed
// backend's can.
type lostGrant struct {
	fakeGrant
	lost chan struct{}
}

func (g lostGrant) Lost() <-chan struct{} { return g.lost }

func TestGuardedFencedLost(t *testing.T) {
	_, g := guardedFixture(t, "guarded-lost")
	lg := lostGrant{fakeGrant{1}, make(chan struct{})}
	l := leaseOf(t, "guarded-lost", lg)
	require.NoError(t, g.Write(l, []byte("while held")))
	close(lg.lost)
	err := g.Write(l, []byte("after the lock was lost"))
	assert.ErrorIs(t, err, lock.ErrFenced)
	err = g.Update(l, func([]byte) ([]byte, error) { t.Fatal("fn called for a lost lease"); return nil, nil })
	assert.ErrorIs(t, err, lock.ErrFenced)
	data, err := g.Read()
	require.NoError(t, err)
	assert.Equal(t, "while held", string(data))
}

func TestGuardedFencedStaleToken(t *testing.T) {
	c, g := guardedFixture(t, "guarded-stale")
	b := acquire(t, c)
	defer b.Release()
	require.NoError(t, g.Write(b, []byte("from B")))
	want, err := os.ReadFile(g.Path())
	require.NoError(t, err)

	// A live lease of the same lock with a lower token: a holder that
	// was superseded while it paused (possible with a distributed
	// backend whose session expired).
	stale := fakeLease(t, c.Name(), b.Token()-1)
	for i := 0; i < 1000; i++ {
		err := g.Write(stale, []byte("stale"))
		if !errors.Is(err, lock.ErrFenced) {
			t.Fatalf("try %d: Write with a lower token = %v, want lock.ErrFenced", i, err)
		}
	}
	got, err := os.ReadFile(g.Path())
	require.NoError(t, err)
	assert.Equal(t, want, got, "the file is unchanged")

	// The same token may write again (Update under one lease).
	require.NoError(t, g.Write(fakeLease(t, c.Name(), b.Token()), []byte("same token")))
}

func TestGuardedFencedFutureToken(t *testing.T) {
	c, g := guardedFixture(t, "guarded-future")
	// The file was written with a token an hour ahead of the clock.
	future := uint64(time.Now().Add(time.Hour).UnixNano())
	require.NoError(t, g.Write(fakeLease(t, c.Name(), future), []byte("from the future")))

	l := acquire(t, c)
	defer l.Release()
	err := g.Write(l, []byte("now"))
	require.ErrorIs(t, err, lock.ErrFenced)
	assert.Contains(t, err.Error(), "ahead of this machine's clock")
	t.Logf("the error says: %v", err)

	// Recovery as documented: save the payload, remove the file, write.
	data, err := g.Read()
	require.NoError(t, err)
	require.NoError(t, os.Remove(g.Path()))
	require.NoError(t, g.Write(l, data))
	got, err := g.Read()
	require.NoError(t, err)
	assert.Equal(t, "from the future", string(got))
}

func TestGuardedFencedOtherLock(t *testing.T) {
	dir := proctest.TempDir(t)
	a, err := lock.New("guarded-a", lock.WithDir(dir))
	require.NoError(t, err)
	b, err := lock.New("guarded-b", lock.WithDir(dir))
	require.NoError(t, err)
	la, lb := acquire(t, a), acquire(t, b)
	defer la.Release()
	defer lb.Release()

	// Without By the first write decides.
	g, err := Open(filepath.Join(proctest.TempDir(t), "f"))
	require.NoError(t, err)
	require.NoError(t, g.Write(la, []byte("a")))
	err = g.Write(lb, []byte("b"))
	assert.ErrorIs(t, err, lock.ErrFenced)
	t.Logf("the error says: %v", err)

	// With By even the first write is checked.
	g2, err := Open(filepath.Join(proctest.TempDir(t), "f"), By(a))
	require.NoError(t, err)
	assert.ErrorIs(t, g2.Write(lb, []byte("b")), lock.ErrFenced)
	_, err = g2.Read()
	assert.ErrorIs(t, err, fs.ErrNotExist, "nothing written")
	assert.NoError(t, g2.Write(la, []byte("a")))

	assert.ErrorIs(t, g.Write(nil, []byte("x")), lock.ErrFenced, "nil lease")
}

func TestGuardedCorruptionDetected(t *testing.T) {
	c, g := guardedFixture(t, "guarded-corrupt")
	l := acquire(t, c)
	defer l.Release()
	require.NoError(t, g.Write(l, []byte("payload of the test")))
	good, err := os.ReadFile(g.Path())
	require.NoError(t, err)

	check := func(what string, b []byte) {
		t.Helper()
		require.NoError(t, os.WriteFile(g.Path(), b, 0o644))
		data, err := g.Read()
		if !errors.Is(err, lock.ErrCorrupt) {
			t.Fatalf("%s: Read = %q, %v; want lock.ErrCorrupt", what, data, err)
		}
	}
	for n := 0; n < len(good); n++ {
		check(fmt.Sprintf("truncated to %d bytes", n), good[:n])
	}
	check("a byte appended", append(bytes.Clone(good), 0))
	for bit := 0; bit < 8*len(good); bit++ {
		b := bytes.Clone(good)
		b[bit/8] ^= 1 << (bit % 8)
		check(fmt.Sprintf("bit %d flipped", bit), b)
	}
	check("a foreign file", []byte("[install]\npackage = office97\n"))

	// Update refuses a damaged file without calling fn; Write repairs
	// it.
	b := bytes.Clone(good)
	b[len(b)-1] ^= 0xff
	require.NoError(t, os.WriteFile(g.Path(), b, 0o644))
	err = g.Update(l, func([]byte) ([]byte, error) { t.Fatal("fn called on a damaged file"); return nil, nil })
	assert.ErrorIs(t, err, lock.ErrCorrupt)
	require.NoError(t, g.Write(l, []byte("repaired")))
	data, err := g.Read()
	require.NoError(t, err)
	assert.Equal(t, "repaired", string(data))

	// An empty file is damage too, and Write repairs it.
	require.NoError(t, os.WriteFile(g.Path(), nil, 0o644))
	require.NoError(t, g.Write(l, []byte("repaired again")))

	// A file that is not a guarded file at all is left alone.
	foreign := []byte("[install]\npackage = office97\n")
	require.NoError(t, os.WriteFile(g.Path(), foreign, 0o644))
	assert.ErrorIs(t, g.Write(l, []byte("x")), lock.ErrCorrupt)
	got, err := os.ReadFile(g.Path())
	require.NoError(t, err)
	assert.Equal(t, foreign, got)
}

func TestGuardedRemovesStaleTemps(t *testing.T) {
	c, g := guardedFixture(t, "guarded-temps")
	stale := filepath.Join(g.dir, "."+g.base+guardedTempInfix+"0123456789abcdef")
	require.NoError(t, os.WriteFile(stale, []byte("left by a writer killed mid-write"), 0o644))
	other := filepath.Join(g.dir, "unrelated")
	require.NoError(t, os.WriteFile(other, nil, 0o644))
	l := acquire(t, c)
	defer l.Release()
	require.NoError(t, g.Write(l, []byte("x")))
	assert.Empty(t, tempFiles(t, g))
	assert.FileExists(t, other)
}

// TestGuardedFaults fails each step of a commit in turn and checks that
// the previous version is left byte for byte, with no temporary file.
func TestGuardedFaults(t *testing.T) {
	eio := syscall.EIO
	faults := []struct {
		name   string
		inject func(o *guardedOps)
		want   error
	}{
		{"write", func(o *guardedOps) {
			o.write = func(*os.File, []byte) (int, error) { return 0, eio }
		}, eio},
		{"write ENOSPC halfway", func(o *guardedOps) {
			o.write = func(f *os.File, b []byte) (int, error) {
				n, _ := f.Write(b[:len(b)/2])
				return n, syscall.ENOSPC
			}
		}, syscall.ENOSPC},
		{"short write", func(o *guardedOps) {
			o.write = func(f *os.File, b []byte) (int, error) { return f.Write(b[:len(b)-1]) }
		}, nil},
		{"fsync", func(o *guardedOps) {
			o.sync = func(*os.File) error { return eio }
		}, eio},
		{"rename", func(o *guardedOps) {
			o.rename = func(string, string) error { return eio }
		}, eio},
		{"directory fsync", func(o *guardedOps) {
			o.syncDir = func(string) error { return eio }
		}, eio},
		{"directory fsync, not again in the rollback", func(o *guardedOps) {
			calls := 0
			o.syncDir = func(string) error {
				calls++
				if calls%2 == 1 {
					return eio
				}
				return nil
			}
		}, eio},
	}
	for _, f := range faults {
		for _, first := range []bool{false, true} {
			name := f.name
			if first {
				name += " of the first version"
			}
			t.Run(name, func(t *testing.T) {
				c, g := guardedFixture(t, "guarded-faults")
				l := acquire(t, c)
				defer l.Release()
				var old []byte
				if !first {
					require.NoError(t, g.Write(l, []byte("version 1")))
					var err error
					old, err = os.ReadFile(g.Path())
					require.NoError(t, err)
				}
				f.inject(&g.ops)
				for _, write := range []func() error{
					func() error { return g.Write(l, bytes.Repeat([]byte("version 2 "), 500)) },
					func() error {
						return g.Update(l, func([]byte) ([]byte, error) { return []byte("version 2"), nil })
					},
				} {
					err := write()
					require.Error(t, err)
					if f.want != nil {
						assert.ErrorIs(t, err, f.want)
					}
					t.Logf("the error says: %v", err)
					got, rerr := os.ReadFile(g.Path())
					if first {
						assert.ErrorIs(t, rerr, fs.ErrNotExist, "no version")
					} else {
						require.NoError(t, rerr)
						assert.Equal(t, old, got, "previous version byte for byte")
					}
					assert.Empty(t, tempFiles(t, g), "temporary files")
				}
				// With the fault gone, writes work again.
				g.ops = defaultGuardedOps
				require.NoError(t, g.Write(l, []byte("version 3")))
				data, err := g.Read()
				require.NoError(t, err)
				assert.Equal(t, "version 3", string(data))
			})
		}
	}
}

func FuzzGuardedDecode(f *testing.F) {
	for _, v := range []guardedVersion{
		{token: 1, name: "a", payload: nil},
		{token: 1<<63 + 5, name: "pcm-install", payload: []byte("install office97\n")},
		{token: 42, name: strings.Repeat("x", lock.MaxNameLen), payload: bytes.Repeat([]byte{0, 0xff}, 300)},
	} {
		b, err := encodeGuarded(v)
		require.NoError(f, err)
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(b[:guardedHeaderSize-1])
		c := bytes.Clone(b)
		c[9]++
		f.Add(c)
	}
	f.Add([]byte{})
	f.Add([]byte(guardedMagic))
	f.Add([]byte("[install]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeGuarded(b)
		if err != nil {
			if !errors.Is(err, lock.ErrCorrupt) {
				t.Fatalf("decode error %v does not match lock.ErrCorrupt", err)
			}
			return
		}
		again, err := encodeGuarded(v)
		if err != nil {
			t.Fatalf("decoded version does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, b)
		}
	})
}

func BenchmarkGuardedUpdate4KiB(b *testing.B) {
	for _, bc := range []struct {
		name  string
		fsync bool
	}{
		{"fsync", true},
		// The cost of everything but the two fsyncs (file and
		// directory): not a mode the package offers.
		{"no-fsync-cost-only", false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c, g := guardedFixture(b, "guarded-bench")
			if !bc.fsync {
				g.ops.sync = func(*os.File) error { return nil }
				g.ops.syncDir = func(string) error { return nil }
			}
			l := acquire(b, c)
			defer l.Release()
			payload := bytes.Repeat([]byte{'x'}, 4096)
			require.NoError(b, g.Write(l, payload))
			b.SetBytes(4096)
			b.ResetTimer()
			for b.Loop() {
				err := g.Update(l, func(old []byte) ([]byte, error) {
					old[0]++
					return old, nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// wineNoReplaceOpen is why guarded tests that rename over a file that
// is open elsewhere cannot run under Wine: its server refuses to replace
// a file that any process has open, whatever the share mode and the
// rename flags, where Windows 10 (1709 and later, NTFS) replaces it with
// FILE_RENAME_FLAG_POSIX_SEMANTICS (see guardedRename).
const wineNoReplaceOpen = "cannot rename over a file that another handle has open (Windows can, with POSIX rename semantics)"

// TestGuardedReplaceWhileOpen replaces the file while a reader has it
// open, which on Windows needs the reader to share delete access and
// the writer to rename with POSIX semantics.
func TestGuardedReplaceWhileOpen(t *testing.T) {
	skipOnWine(t, wineNoReplaceOpen)
	c, g := guardedFixture(t, "guarded-open")
	l := acquire(t, c)
	defer l.Release()
	require.NoError(t, g.Write(l, []byte("old")))
	f, err := guardedOpenRead(g.Path())
	require.NoError(t, err)
	defer f.Close()

	require.NoError(t, g.Write(l, []byte("new")))
	data, err := g.Read()
	require.NoError(t, err)
	assert.Equal(t, "new", string(data))

	// The open handle still reads the version it opened.
	raw, err := io.ReadAll(f)
	require.NoError(t, err)
	v, err := decodeGuarded(raw)
	require.NoError(t, err)
	assert.Equal(t, "old", string(v.payload))
}
