//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package lock_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/internal/racebuild"
	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/guarded"
	"github.com/agentlock/agentlock/lock/locktest"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

// Tests of the file backend against what happens to lock directories
// in the field: lock files removed or replaced under a holder, holder
// pages truncated or scribbled on, squatters and foreign lockers.

const roleField = "field"

func init() { proctest.Role(roleField, fieldRole) }

// fieldRole is a child that obeys one command per line, on the lock
// args[1] in directory args[0]:
//
//	acquire [TIMEOUT]  "locked TOKEN" | "corrupt MSG" | "error MSG"; later "lost NANOS" if Lost closes
//	try                "locked TOKEN" | "busy PID FOREIGN" | "corrupt MSG" | "error MSG"
//	release            "released" | "release-error MSG"
//	write PATH DATA    guarded write with the lease: "written" | "refused MSG"
//	holder             "holder PID FOREIGN" | "free" | "corrupt MSG" | "error MSG"
func fieldRole(args []string, in *bufio.Scanner, out *proctest.Writer) int {
	c, err := lock.New(args[1], lock.WithDir(args[0]), lock.WithPurpose("field"))
	if err != nil {
		out.Println("error", err)
		return 1
	}
	var l *lock.Lease
	report := func(err error) {
		msg := strings.ReplaceAll(fmt.Sprint(err), "\n", " ")
		switch {
		case errors.Is(err, lock.ErrCorrupt):
			out.Println("corrupt", msg)
		default:
			out.Println("error", msg)
		}
	}
	took := func(nl *lock.Lease) {
		l = nl
		out.Println("locked", l.Token())
		go func(l *lock.Lease) {
			if ch := l.Lost(); ch != nil {
				<-ch
				out.Println("lost", time.Now().UnixNano())
			}
		}(l)
	}
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "acquire":
			ctx := context.Background()
			if len(f) > 1 {
				d, _ := time.ParseDuration(f[1])
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, d)
				defer cancel()
			}
			out.Println("waiting")
			nl, err := c.Acquire(ctx)
			if err != nil {
				report(err)
				continue
			}
			took(nl)
		case "try":
			nl, err := c.TryAcquire(context.Background())
			var be *lock.BusyError
			switch {
			case errors.As(err, &be):
				out.Println("busy", be.Holder.PID, be.Holder.Foreign)
			case err != nil:
				report(err)
			default:
				took(nl)
			}
		case "release":
			if err := l.Release(); err != nil {
				out.Println("release-error", strings.ReplaceAll(err.Error(), "\n", " "))
				continue
			}
			out.Println("released")
		case "write":
			g, err := guarded.Open(f[1], guarded.By(c))
			if err == nil {
				err = g.Write(l, []byte(f[2]))
			}
			if err != nil {
				out.Println("refused", strings.ReplaceAll(err.Error(), "\n", " "))
				continue
			}
			out.Println("written")
		case "holder":
			h, err := c.Holder(context.Background())
			switch {
			case errors.Is(err, lock.ErrNotHeld):
				out.Println("free")
			case err != nil:
				report(err)
			default:
				out.Println("holder", h.PID, h.Foreign)
			}
		case "exit":
			return 0
		}
	}
	return 0
}

// fieldChild starts a field child on dir/name.
func fieldChild(t *testing.T, dir, name string) *proctest.Child {
	t.Helper()
	return proctest.Start(t, roleField, dir, name)
}

// acquired sends acquire and waits for the lock; it returns the token.
func acquired(t *testing.T, ch *proctest.Child) uint64 {
	t.Helper()
	ch.Send("acquire")
	ch.Expect("waiting", fieldLong)
	return tokenOf(t, ch.Expect("locked", fieldLong))
}

func tokenOf(t *testing.T, line string) uint64 {
	t.Helper()
	f := strings.Fields(line)
	require.Len(t, f, 2, line)
	tok, err := strconv.ParseUint(f[1], 10, 64)
	require.NoError(t, err, line)
	return tok
}

// nanosOf parses the NANOS of a line such as "lost NANOS".
func nanosOf(t *testing.T, line string) time.Time {
	t.Helper()
	f := strings.Fields(line)
	require.Len(t, f, 2, line)
	n, err := strconv.ParseInt(f[1], 10, 64)
	require.NoError(t, err, line)
	return time.Unix(0, n)
}

// noLine fails if ch says anything within d.
func noLine(t *testing.T, ch *proctest.Child, d time.Duration, why string) {
	t.Helper()
	if line, ok := ch.Next(d); ok {
		t.Fatalf("%s: %s said %q", why, ch.Role, line)
	}
}

const fieldLong = 30 * time.Second

// expectEither waits for the next line and requires one of prefixes.
func expectEither(t *testing.T, ch *proctest.Child, timeout time.Duration, prefixes ...string) string {
	t.Helper()
	line, ok := ch.Next(timeout)
	require.True(t, ok, "no line within %v (want %v)", timeout, prefixes)
	for _, p := range prefixes {
		if strings.HasPrefix(line, p) {
			return line
		}
	}
	t.Fatalf("got %q, want a line starting with one of %v", line, prefixes)
	return ""
}

// TestLockFileRemovedWhileHeld: A holds, C waits on the same file, the
// lock file is removed or replaced, B arrives. A's Lost closes and its
// guarded writes are refused; C never holds while B does.
func TestLockFileRemovedWhileHeld(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(dir string) error
	}{
		{"rm", func(dir string) error { return os.Remove(filepath.Join(dir, "x.lock")) }},
		{"mv over", func(dir string) error {
			other := filepath.Join(dir, "other")
			if err := os.WriteFile(other, nil, 0o666); err != nil {
				return err
			}
			return os.Rename(other, filepath.Join(dir, "x.lock"))
		}},
		{"mv away", func(dir string) error {
			return os.Rename(filepath.Join(dir, "x.lock"), filepath.Join(dir, "y.lock"))
		}},
		{"rm both", func(dir string) error {
			if err := os.Remove(filepath.Join(dir, "x.lock")); err != nil {
				return err
			}
			return os.Remove(filepath.Join(dir, "x.holder"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := proctest.TempDir(t)
			gpath := filepath.Join(proctest.TempDir(t), "guarded")
			a := fieldChild(t, dir, "x")
			ta := acquired(t, a)
			a.Send("write " + gpath + " v1")
			a.Expect("written", fieldLong)

			c := fieldChild(t, dir, "x")
			c.Send("acquire")
			c.Expect("waiting", fieldLong)
			noLine(t, c, 300*time.Millisecond, "the lock is held")

			before := time.Now()
			require.NoError(t, tc.mutate(dir))
			lost := nanosOf(t, a.Expect("lost", 5*time.Second)).Sub(before)
			t.Logf("A's Lost closed %v after the lock file was changed", lost)
			require.Less(t, lost, 2*time.Second, "Lost must close promptly")
			a.Send("write " + gpath + " v2")
			require.Contains(t, a.Expect("refused", fieldLong), "lost")

			// B arrives; C, whose file is gone, contends on the new one
			// too. One of them gets it, and the other not until it is
			// released, whatever A does with its lost lock.
			b := fieldChild(t, dir, "x")
			b.Send("acquire")
			b.Expect("waiting", fieldLong)
			var first, second *proctest.Child
			select {
			case l := <-b.Lines():
				first, second = b, c
				require.Greater(t, tokenOf(t, l), ta, "B: %q", l)
			case l := <-c.Lines():
				first, second = c, b
				require.Greater(t, tokenOf(t, l), ta, "C: %q", l)
			case <-time.After(fieldLong):
				t.Fatal("neither B nor C got the new lock file")
			}
			a.Send("release")
			require.Contains(t, expectEither(t, a, fieldLong, "released", "release-error"), "lost")
			noLine(t, second, 500*time.Millisecond, first.Role+" holds the lock")

			first.Send("release")
			first.Expect("released", fieldLong)
			second.Expect("locked", fieldLong)
			second.Send("release")
			second.Expect("released", fieldLong)
		})
	}
}

// TestHolderPageTruncated: truncating NAME.holder while one process
// holds the lock and two wait: the waiters get the lock in turn, every
// Release returns nil, and Holder never says "not held" meanwhile.
func TestHolderPageTruncated(t *testing.T) {
	skipTruncateUnderRace(t)
	dir := proctest.TempDir(t)
	hpath := filepath.Join(dir, "x.holder")
	h := fieldChild(t, dir, "x")
	acquired(t, h)
	ws := []*proctest.Child{fieldChild(t, dir, "x"), fieldChild(t, dir, "x")}
	for _, w := range ws {
		w.Send("acquire")
		w.Expect("waiting", fieldLong)
	}
	noLine(t, ws[0], 100*time.Millisecond, "the lock is held")
	require.NoError(t, os.Truncate(hpath, 0))

	// Holder, from this process and from a fresh one: the holder, or
	// ErrCorrupt, never ErrNotHeld.
	c := newC(t, dir, "x")
	for i := 0; i < 20; i++ {
		hd, err := c.Holder(context.Background())
		if err == nil {
			require.Equal(t, h.PID(), hd.PID)
		} else {
			require.ErrorIs(t, err, lock.ErrCorrupt)
			require.NotContains(t, err.Error(), "runtime error")
		}
		time.Sleep(5 * time.Millisecond) // spread the looks over the holder's repair
	}
	q := fieldChild(t, dir, "x")
	q.Send("holder")
	line := expectEither(t, q, fieldLong, "holder", "corrupt")
	require.NotContains(t, line, "runtime error")

	require.NoError(t, os.Truncate(hpath, 100))
	h.Send("release")
	h.Expect("released", fieldLong)
	var first, second *proctest.Child
	select {
	case l := <-ws[0].Lines():
		require.True(t, strings.HasPrefix(l, "locked"), "waiter 1: %q", l)
		first, second = ws[0], ws[1]
	case l := <-ws[1].Lines():
		require.True(t, strings.HasPrefix(l, "locked"), "waiter 2: %q", l)
		first, second = ws[1], ws[0]
	case <-time.After(fieldLong):
		t.Fatal("no waiter got the lock")
	}
	require.NoError(t, os.Truncate(hpath, 0))
	first.Send("release")
	first.Expect("released", fieldLong)
	second.Expect("locked", fieldLong)
	require.NoError(t, os.Truncate(hpath, 0))
	second.Send("release")
	second.Expect("released", fieldLong)
}

// TestTokensSurviveTampering writes into the holder page what a local
// user could (the file is writable by all): the top token, random
// bytes, a token centuries ahead, zeros. The tokens the test sees never
// go down or repeat; an untrustworthy page is ErrCorrupt, whose message
// says how to recover, and the recovery works.
func TestTokensSurviveTampering(t *testing.T) {
	dir := proctest.TempDir(t)
	hpath := filepath.Join(dir, "x.holder")
	live := fieldChild(t, dir, "x")
	var last uint64
	take := func(ch *proctest.Child, what string) {
		t.Helper()
		ch.Send("try")
		line := expectEither(t, ch, fieldLong, "locked", "corrupt")
		if strings.HasPrefix(line, "corrupt") {
			t.Logf("%s: %s", what, line)
			require.Contains(t, line, "remove")
			// The recovery the message describes.
			require.NoError(t, os.Remove(hpath))
			ch.Send("try")
			line = ch.Expect("locked", fieldLong)
		}
		tok := tokenOf(t, line)
		require.Greater(t, tok, last, "%s: token went down or repeated", what)
		require.Less(t, tok, uint64(time.Now().Add(48*time.Hour).UnixNano()), "%s: token far in the future", what)
		last = tok
		ch.Send("release")
		ch.Expect("released", fieldLong)
	}
	poke := func(off int64, b []byte) {
		t.Helper()
		f, err := os.OpenFile(hpath, os.O_WRONLY, 0)
		require.NoError(t, err)
		_, err = f.WriteAt(b, off)
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
	word := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	rnd := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	}
	for i, tamper := range []struct {
		what string
		do   func()
	}{
		{"nothing", func() {}},
		{"top token", func() { poke(24, word(math.MaxUint64)) }},
		{"top token - 1", func() { poke(24, word(math.MaxUint64-1)) }},
		{"300 years ahead", func() { poke(24, word(uint64(time.Now().AddDate(300, 0, 0).UnixNano()))) }},
		{"random token word", func() { poke(24, random(8)) }},
		{"random page", func() { poke(0, random(4096)) }},
		{"random body", func() { poke(64, random(384)) }},
		{"zero page", func() { poke(0, make([]byte, 4096)) }},
		{"top token in a zero header", func() { poke(0, make([]byte, 4096)); poke(24, word(math.MaxUint64)) }},
	} {
		take(live, "before "+tamper.what)
		tamper.do()
		take(live, tamper.what+" (live process)")
		tamper.do()
		take(fieldChild(t, dir, "x"), tamper.what+" (new process)")
		_ = i
	}
}

// TestSquatterFile: a lock or holder file planted by another ordinary
// user with mode 0600 would shut everyone but its owner (and root) out.
// Root repairs it to the shared mode; a user who cannot is refused
// with ErrUnsafePath naming the owner and the mode.
func TestSquatterFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to plant a file owned by another user and to run a child as a third")
	}
	exe := copyTestBinary(t)
	for _, file := range []string{"x.lock", "x.holder"} {
		t.Run(file, func(t *testing.T) {
			top, err := os.MkdirTemp("", "squat")
			require.NoError(t, err)
			t.Cleanup(func() { os.RemoveAll(top) })
			require.NoError(t, os.Chmod(top, 0o755))
			dir := filepath.Join(top, "locks")
			require.NoError(t, os.Mkdir(dir, 0o755))
			require.NoError(t, os.Chmod(dir, 0o777|os.ModeSticky))
			p := filepath.Join(dir, file)
			require.NoError(t, os.WriteFile(p, nil, 0o600))
			require.NoError(t, os.Chown(p, 12345, 12345))

			// A third user may not repair it: refused, naming owner and mode.
			out, _ := runAs(exe, locktest.RoleTry, dir, "x")
			require.Contains(t, out, "unsafe path", "third user: %q", out)
			require.Contains(t, out, "12345", "third user: %q", out)
			require.Contains(t, out, "0600", "third user: %q", out)

			// Root repairs it, and then everyone can share the lock.
			c := newC(t, dir, "x")
			l, err := c.TryAcquire(context.Background())
			require.NoError(t, err)
			require.NoError(t, l.Release())
			st, err := os.Stat(p)
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o666), st.Mode().Perm())
			out, err = runAs(exe, locktest.RoleTry, dir, "x")
			require.NoError(t, err, out)
			require.True(t, strings.HasPrefix(out, "locked "), "third user after repair: %q", out)
		})
	}
}

// TestHolderFileRemovedWhileHeld: with the lock file intact the lock is
// sound, so the holder keeps it (Lost stays open) and publishes its
// record and token on the holder file now at the path; the next holder
// gets a larger token.
func TestHolderFileRemovedWhileHeld(t *testing.T) {
	dir := proctest.TempDir(t)
	a := fieldChild(t, dir, "x")
	ta := acquired(t, a)
	require.NoError(t, os.Remove(filepath.Join(dir, "x.holder")))
	c := newC(t, dir, "x")
	deadline := time.Now().Add(fieldLong)
	for {
		// (For a moment the new page is empty, and the holder is known
		// only from the lock table: Foreign.)
		h, err := c.Holder(context.Background())
		if err == nil && !h.Foreign {
			require.Equal(t, a.PID(), h.PID)
			require.Equal(t, ta, h.Token)
			break
		}
		require.True(t, time.Now().Before(deadline), "the holder's record did not reappear: %v", err)
		time.Sleep(time.Millisecond) // the holder's republishing has no sign outside it but the record
	}
	noLine(t, a, 200*time.Millisecond, "the lock file is intact")
	a.Send("release")
	a.Expect("released", fieldLong)
	b := fieldChild(t, dir, "x")
	require.Greater(t, acquired(t, b), ta)
}

// TestLockFileReplacedWhileAcquiring replaces the lock file in a loop
// while acquisitions run: a file removed between its open and its check
// is gone, not unsafe, so every acquisition must succeed (on a fresh
// open) rather than fail with ErrUnsafePath. The replacements are paced
// (one every 100 µs or so, thousands a second): a path replaced faster
// than an acquisition can open and check it, every time, is an attack
// on the directory, which an acquisition refuses after 100 reopens (on
// a machine with slow system calls an unpaced loop wins that often).
func TestLockFileReplacedWhileAcquiring(t *testing.T) {
	dir := t.TempDir()
	c, err := lock.New("x", lock.WithDir(dir))
	require.NoError(t, err)
	path := filepath.Join(dir, "x.lock")

	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		defer func() { done <- n }()
		tmp := filepath.Join(dir, "replacement")
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := os.WriteFile(tmp, nil, 0o666); err != nil {
				t.Error(err)
				return
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Error(err)
				return
			}
			n++
			time.Sleep(100 * time.Microsecond)
		}
	}()
	deadline := time.Now().Add(2 * time.Second)
	acquired := 0
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		l, err := c.Acquire(ctx)
		cancel()
		if err != nil {
			close(stop)
			<-done
			t.Fatalf("acquisition %d while the lock file is replaced: %v", acquired, err)
		}
		l.Release() // may report ErrLost: its file was replaced while held
		acquired++
	}
	close(stop)
	replaced := <-done
	t.Logf("%d acquisitions while the lock file was replaced %d times", acquired, replaced)
}

// skipTruncateUnderRace skips a test that truncates a holder page under
// holder processes when they are race-built: a memory fault on the
// truncated mapping once hit the watch goroutine while the race runtime
// had it on the system stack, where it cannot be turned into an error,
// and killed the holder. .ci/run runs these tests without -race.
func skipTruncateUnderRace(t *testing.T) {
	t.Helper()
	if racebuild.Enabled {
		t.Skip("truncates a holder page under race-built holder processes; .ci/run runs this test without -race")
	}
}
