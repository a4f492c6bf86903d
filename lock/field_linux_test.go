package lock_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

const roleFieldMany = "field-many"

func init() { proctest.Role(roleFieldMany, fieldManyRole) }

// fieldManyRole: args dir count. Takes the locks n0 … n{count-1} and
// says "held"; then holds them until killed.
func fieldManyRole(args []string, in *bufio.Scanner, out *proctest.Writer) int {
	n, _ := strconv.Atoi(args[1])
	var held []*lock.Lease
	for _, name := range manyNames(n) {
		c, err := lock.New(name, lock.WithDir(args[0]))
		if err == nil {
			var l *lock.Lease
			l, err = c.Acquire(context.Background())
			held = append(held, l)
		}
		if err != nil {
			out.Println("error", err)
			return 1
		}
	}
	out.Println("held", len(held))
	for in.Scan() {
	}
	return 0
}

func manyNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("n%d", i)
	}
	return names
}

// inotifyInstances counts this process's inotify descriptors.
func inotifyInstances(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == "anon_inode:inotify" {
			n++
		}
	}
	return n
}

// TestThousandNames: a process that waits on 1,000 lock names keeps
// one inotify instance, and a holder killed on the 1,000th name is
// noticed as soon as one killed on the first.
func TestThousandNames(t *testing.T) {
	const n = 1000
	dir := proctest.TempDir(t)
	names := manyNames(n)
	cs := make([]*lock.Coordinator, n)
	for i, name := range names {
		cs[i] = newC(t, dir, name)
	}
	h := proctest.Start(t, roleFieldMany, dir, strconv.Itoa(n))
	h.Expect("held", 2*time.Minute)

	// Wait on every name long enough for its wait to watch for deaths.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	errs := make(chan error, n)
	for _, c := range cs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Millisecond)
			defer cancel()
			if _, err := c.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
				errs <- fmt.Errorf("%s: %v", c.Name(), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := inotifyInstances(t)
	t.Logf("inotify instances after waiting on %d names: %d", n, got)
	require.LessOrEqual(t, got, 1)

	// Kill holders of the first and the last name, three times.
	var firsts, lasts []time.Duration
	for round := 0; round < 3; round++ {
		if round > 0 {
			h = proctest.Start(t, roleFieldMany, dir, strconv.Itoa(n))
			h.Expect("held", 2*time.Minute)
		}
		type res struct {
			i int
			t time.Time
		}
		done := make(chan res, 2)
		for _, i := range []int{0, n - 1} {
			go func() {
				l, err := cs[i].Acquire(context.Background())
				if err == nil {
					defer l.Release()
				}
				done <- res{i, time.Now()}
			}()
		}
		time.Sleep(300 * time.Millisecond) // long waits: asleep
		killed := time.Now()
		h.Kill()
		for k := 0; k < 2; k++ {
			select {
			case r := <-done:
				if r.i == 0 {
					firsts = append(firsts, r.t.Sub(killed))
				} else {
					lasts = append(lasts, r.t.Sub(killed))
				}
			case <-time.After(fieldLong):
				t.Fatal("a waiter did not get the lock after its holder died")
			}
		}
		<-h.Done()
	}
	t.Logf("death noticed on the first name after %v, on the 1,000th after %v", firsts, lasts)
	require.Less(t, slices.Max(lasts), 200*time.Millisecond, "the 1,000th name must not fall back to the safety-net timeout (250 ms at first)")
}

// TestHolderPageOnFullFileSystem: the first use of a name on a full
// file system is ENOSPC, reported as such, not a fault on a sparse
// page.
func TestHolderPageOnFullFileSystem(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k,mode=1777"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	// Detached: this process keeps the lock's files open for good.
	defer syscall.Unmount(dir, syscall.MNT_DETACH)
	fill, err := os.Create(filepath.Join(dir, "fill"))
	require.NoError(t, err)
	buf := make([]byte, 4096)
	for {
		if _, err := fill.Write(buf); err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			break
		}
	}
	fill.Close()
	c := newC(t, dir, "fresh")
	_, err = c.Acquire(context.Background())
	t.Logf("Acquire on a full tmpfs: %v", err)
	require.ErrorIs(t, err, syscall.ENOSPC)
	var pe *fs.PathError
	require.ErrorAs(t, err, &pe)
	require.Contains(t, pe.Path, "fresh")
	require.NotContains(t, err.Error(), "runtime error")

	// Room again: the name works.
	require.NoError(t, os.Remove(filepath.Join(dir, "fill")))
	l, err := c.Acquire(context.Background())
	require.NoError(t, err)
	require.NoError(t, l.Release())
}

// TestForeignFlockHolder: flock(1) holding NAME.lock is reported by
// Holder and TryAcquire with its pid, marked foreign; its release is
// noticed promptly, whether it exits or (python fcntl) unlocks and
// keeps the file open.
func TestForeignFlockHolder(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("no flock(1)")
	}
	dir := proctest.TempDir(t)
	path := filepath.Join(dir, "x.lock")
	c := newC(t, dir, "x")
	l, err := c.Acquire(context.Background())
	require.NoError(t, err)
	require.NoError(t, l.Release())

	// flock(1) runs its command once it holds the lock: the command's
	// first line says it does.
	cmd := exec.Command("flock", "-o", path, "sh", "-c", "echo locked; exec sleep 60")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := cmd.Process.Pid
	locked := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		locked <- line
	}()
	select {
	case line := <-locked:
		require.Equal(t, "locked\n", line, "flock(1) did not lock")
	case <-time.After(fieldLong):
		t.Fatal("flock(1) did not lock")
	}
	h, err := c.Holder(context.Background())
	require.NoError(t, err)
	require.Equal(t, pid, h.PID)
	require.True(t, h.Foreign)
	_, err = c.TryAcquire(context.Background())
	var be *lock.BusyError
	require.ErrorAs(t, err, &be)
	require.Equal(t, pid, be.Holder.PID)
	require.True(t, be.Holder.Foreign)
	require.Contains(t, be.Error(), strconv.Itoa(pid))
	q := fieldChild(t, dir, "x")
	q.Send("holder")
	require.Equal(t, fmt.Sprintf("holder %d true", pid), q.Expect("holder", fieldLong))

	got := acquiredAt(c)
	time.Sleep(300 * time.Millisecond) // the waiter is in its long wait: what the kill must wake
	cmd.Process.Kill()
	cmd.Wait()
	exited := time.Now()
	d := (<-got).Sub(exited)
	t.Logf("flock(1) killed: lock taken %v later", d)
	require.Less(t, d, time.Second)
}

// TestForeignUnlockWithoutClose: a python holder that unlocks with
// fcntl.flock(LOCK_UN) and keeps the file open cannot wake waiters;
// they look again at a short interval while its lock lasts.
func TestForeignUnlockWithoutClose(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	dir := proctest.TempDir(t)
	c := newC(t, dir, "x")
	l, err := c.Acquire(context.Background())
	require.NoError(t, err)
	require.NoError(t, l.Release())
	const script = `
import fcntl, sys, time
f = open(sys.argv[1], "r+")
while sys.stdin.readline():
    fcntl.flock(f, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.readline()
    fcntl.flock(f, fcntl.LOCK_UN)
    print("unlocked", time.time_ns(), flush=True)
`
	p := startPyLocker(t, py, script, filepath.Join(dir, "x.lock"))
	var ds []time.Duration
	for round := 0; round < 5; round++ {
		fmt.Fprintln(p.stdin, "lock")
		p.expect(t, "locked")
		got := acquiredAt(c)
		time.Sleep(300 * time.Millisecond) // the waiter is in its long wait: what the unlock must wake
		unlocked := p.unlock(t)
		ds = append(ds, (<-got).Sub(unlocked))
	}
	slices.Sort(ds)
	t.Logf("python LOCK_UN without close: lock taken after %v", ds)
	require.Less(t, ds[len(ds)/2], 50*time.Millisecond, "median")
}

// acquiredAt starts an Acquire of c's lock and returns when it got the
// lock (released at once).
func acquiredAt(c *lock.Coordinator) <-chan time.Time {
	got := make(chan time.Time, 1)
	go func() {
		l, err := c.Acquire(context.Background())
		got <- time.Now()
		if err == nil {
			l.Release()
		}
	}()
	return got
}

// TestRestoredPageWakesSleepers: a holder page truncated under a
// waiter that sleeps behind a live holder loses the waiter's "someone
// is waiting" flag with the rest of the page, so the holder's Release
// finds nobody to wake. The watch that sees the page modified wakes
// the sleepers, which announce themselves again on the restored page:
// the Release then wakes the waiter at once, not its safety-net
// timeout (up to a second by the time the page is truncated here).
func TestRestoredPageWakesSleepers(t *testing.T) {
	skipTruncateUnderRace(t)
	dir := proctest.TempDir(t)
	hpath := filepath.Join(dir, "x.holder")
	h := fieldChild(t, dir, "x")
	c := newC(t, dir, "x")
	var ds []time.Duration
	for round := 0; round < 3; round++ {
		acquired(t, h)
		got := acquiredAt(c)
		// Long enough for the waiter's futex sleeps to have grown to a
		// second, and to be in the middle of one.
		time.Sleep(2 * time.Second)
		require.NoError(t, os.Truncate(hpath, 0))
		// The holder restores its page and publishes its record again.
		for {
			hd, err := c.Holder(context.Background())
			if err == nil && hd.PID == h.PID() {
				break
			}
			time.Sleep(time.Millisecond)
		}
		released := time.Now()
		h.Send("release")
		h.Expect("released", fieldLong)
		ds = append(ds, (<-got).Sub(released))
	}
	slices.Sort(ds)
	t.Logf("lock taken after %v", ds)
	require.Less(t, ds[len(ds)/2], 200*time.Millisecond, "median")
}

// TestDeadHolderThenForeignLocker: a holder killed while a waiter
// sleeps behind it leaves its record, and a foreign locker (Python's
// fcntl.flock, blocked on the lock) takes the lock at its death. The
// record still names the dead holder, so the waiter must look again
// at the foreign holders' short interval, not sleep as behind a live
// holder that will wake it: the foreign locker's unlock without a
// close wakes nobody.
func TestDeadHolderThenForeignLocker(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	dir := proctest.TempDir(t)
	c := newC(t, dir, "x")
	const script = `
import fcntl, sys, time
f = open(sys.argv[1], "r+")
print("ready", flush=True)
fcntl.flock(f, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.readline()
fcntl.flock(f, fcntl.LOCK_UN)
print("unlocked", time.time_ns(), flush=True)
sys.stdin.readline()
`
	var ds []time.Duration
	for round := 0; len(ds) < 3; round++ {
		if round == 10 {
			t.Fatalf("the waiter, not the foreign locker, took the lock at the holder's death in %d rounds of %d", round-len(ds), round)
		}
		h := fieldChild(t, dir, "x")
		acquired(t, h)
		got := acquiredAt(c)
		time.Sleep(300 * time.Millisecond) // the waiter sleeps behind a live holder

		p := startPyLocker(t, py, script, filepath.Join(dir, "x.lock"))
		p.expect(t, "ready")
		inFlock(t, p.cmd.Process.Pid) // queued on the lock before the waiter's next attempt
		h.Kill()
		h.Wait(fieldLong)

		pyLocked := make(chan bool, 1)
		go func() { pyLocked <- p.out.Scan() && p.out.Text() == "locked" }()
		select {
		case at := <-got:
			// The waiter was first: not the case under test.
			t.Logf("round %d: the waiter took the lock first, at %v", round, at.Format(time.StampMicro))
			<-pyLocked
			p.stop()
			continue
		case ok := <-pyLocked:
			require.True(t, ok, "python: %v", p.out.Err())
		}
		time.Sleep(300 * time.Millisecond) // past the waiter's first safety-net sleep after the death's wake-ups
		unlocked := p.unlock(t)
		ds = append(ds, (<-got).Sub(unlocked))
		p.stop()
	}
	slices.Sort(ds)
	t.Logf("lock taken after %v", ds)
	require.Less(t, ds[len(ds)/2], 150*time.Millisecond, "median")
}

// inFlock waits until the process pid's main thread sleeps in flock(2).
func inFlock(t *testing.T, pid int) {
	t.Helper()
	want := strconv.Itoa(syscall.SYS_FLOCK) + " "
	for deadline := time.Now().Add(fieldLong); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/syscall", pid))
		require.NoError(t, err)
		if strings.HasPrefix(string(b), want) {
			return
		}
	}
	t.Fatalf("process %d never slept in flock(2)", pid)
}

// A pyLocker is a Python process that runs a script on a lock file
// (its argument) and talks to the test in lines.
type pyLocker struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

// startPyLocker starts py with script on path; the process is killed
// when the test ends, if it has not been stopped.
func startPyLocker(t *testing.T, py, script, path string) *pyLocker {
	t.Helper()
	cmd := exec.Command(py, "-c", script, path)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &pyLocker{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	t.Cleanup(p.stop)
	return p
}

// expect reads the next line, which must be want.
func (p *pyLocker) expect(t *testing.T, want string) {
	t.Helper()
	require.True(t, p.out.Scan(), "python: %v", p.out.Err())
	require.Equal(t, want, p.out.Text())
}

// unlock has the script unlock (a line "unlock") and returns the time
// it says it unlocked at (its line "unlocked NANOS").
func (p *pyLocker) unlock(t *testing.T) time.Time {
	t.Helper()
	fmt.Fprintln(p.stdin, "unlock")
	require.True(t, p.out.Scan(), "python: %v", p.out.Err())
	f := strings.Fields(p.out.Text())
	require.Len(t, f, 2)
	ns, err := strconv.ParseInt(f[1], 10, 64)
	require.NoError(t, err)
	return time.Unix(0, ns)
}

// stop ends the process; it may be called more than once.
func (p *pyLocker) stop() {
	p.stdin.Close()
	p.cmd.Process.Kill()
	p.cmd.Wait()
}
