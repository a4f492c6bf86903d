// Package locktest is the conformance suite that every lock.Backend
// must pass, the built-in ones and those of other modules (such as the
// etcd backend in lock/etcdlock). Tests use real processes: the test
// binary re-executes itself in the roles registered by Main (see
// package proctest).
//
//	func TestMain(m *testing.M) { locktest.Main(m, factory) }
//	func TestConformance(t *testing.T) { locktest.Run(t, factory) }
//
// A third-party backend runs it the same way from its own tests. The
// factory is called in the test process and in every child process, so
// it must find the same locks from dir alone (or from the environment,
// which children inherit): a distributed backend can write the address
// of its test cluster into dir, or into an environment variable, before
// Run.
package locktest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

// Timeouts are generous: they turn a real deadlock into a failure, and
// must not fail a slow but correct run on a loaded machine (or Wine).
const (
	long  = 60 * time.Second
	quiet = 200 * time.Millisecond // how long "still blocked" is watched
)

// Run runs the suite against the backend that f returns. Main must be
// the test binary's TestMain, with the same f.
func Run(t *testing.T, f Factory) { RunWith(t, f, Options{}) }

// Options adjust the suite to a backend. The zero Options are Run's.
type Options struct {
	// StressRounds is how many times each of the 8 processes of the
	// Stress test takes the lock: default 2000, or 200 with -short. A
	// backend whose every acquisition costs network round trips (a
	// distributed one) may use fewer to keep the suite's run time
	// reasonable; a few hundred still interleave thoroughly.
	StressRounds int
}

// RunWith is Run with options.
func RunWith(t *testing.T, f Factory, o Options) {
	if factory == nil {
		t.Fatal("locktest: TestMain must call locktest.Main or locktest.Register")
	}
	s := &suite{f: f, o: o}
	t.Run("TryFreeAndBusy", s.tryFreeAndBusy)
	t.Run("HolderAcrossProcesses", s.holderAcrossProcesses)
	t.Run("BlocksUntilRelease", s.blocksUntilRelease)
	t.Run("CancelNoPhantom", s.cancelNoPhantom)
	t.Run("CancelInProcess", s.cancelInProcess)
	t.Run("DoubleRelease", s.doubleRelease)
	t.Run("DistinctNames", s.distinctNames)
	t.Run("SameProcess", s.sameProcess)
	t.Run("ChildDoesNotInherit", s.childDoesNotInherit)
	t.Run("HolderKilled", s.holderKilled)
	t.Run("HolderNeverContends", s.holderNeverContends)
	t.Run("Stress", s.stress)
}

type suite struct {
	f Factory
	o Options
}

func (s *suite) new(t *testing.T, dir, name string, opts ...lock.Option) *lock.Coordinator {
	t.Helper()
	b, err := s.f(dir)
	if err != nil {
		t.Fatalf("backend factory: %v", err)
	}
	if c, ok := b.(io.Closer); ok {
		// A backend with a connection (etcd's) closes it, so that a
		// run of the suite leaves no session or goroutine behind.
		t.Cleanup(func() {
			if err := c.Close(); err != nil {
				t.Errorf("closing the backend: %v", err)
			}
		})
	}
	c, err := lock.New(name, append([]lock.Option{lock.WithBackend(b)}, opts...)...)
	if err != nil {
		t.Fatalf("lock.New(%q): %v", name, err)
	}
	return c
}

// hold starts a child that holds name with purpose and waits until it
// reports the lock taken.
func hold(t *testing.T, dir, name, purpose string) (*proctest.Child, uint64) {
	t.Helper()
	ch := proctest.Start(t, RoleHold, dir, name, purpose)
	ch.Expect("waiting", long)
	f := strings.Fields(ch.Expect("locked", long))
	tok, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		t.Fatalf("hold child: bad token: %v", err)
	}
	return ch, tok
}

func try(t *testing.T, dir, name string) string {
	t.Helper()
	ch := proctest.Start(t, RoleTry, dir, name)
	line, ok := ch.Next(long)
	if !ok {
		t.Fatal("try child said nothing")
	}
	ch.CloseStdin()
	noErr(t, ch.Wait(long))
	return line
}

func (s *suite) tryFreeAndBusy(t *testing.T) {
	dir := proctest.TempDir(t)
	c := s.new(t, dir, "tryfree", lock.WithPurpose("installing X"))
	ctx := context.Background()

	l, err := c.TryAcquire(ctx)
	noErr(t, err)
	if l.Token() == 0 {
		t.Error("token is zero")
	}
	equal(t, "holder PID", l.Holder().PID, os.Getpid())
	equal(t, "holder purpose", l.Holder().Purpose, "installing X")

	line := try(t, dir, "tryfree")
	equal(t, "try while held", line, fmt.Sprintf("busy %d installing X", os.Getpid()))

	noErr(t, l.Release())
	line = try(t, dir, "tryfree")
	if !strings.HasPrefix(line, "locked ") {
		t.Fatalf("try after release: got %q, want locked", line)
	}

	// The child's token is later than ours, and ours again later.
	childTok, _ := strconv.ParseUint(strings.Fields(line)[1], 10, 64)
	if childTok <= l.Token() {
		t.Errorf("child's token %d not above ours %d", childTok, l.Token())
	}
	l2, err := c.TryAcquire(ctx)
	noErr(t, err)
	if l2.Token() <= childTok {
		t.Errorf("our second token %d not above the child's %d", l2.Token(), childTok)
	}
	noErr(t, l2.Release())
}

func (s *suite) holderAcrossProcesses(t *testing.T) {
	dir := proctest.TempDir(t)
	c := s.new(t, dir, "who")
	ctx := context.Background()
	_, err := c.Holder(ctx)
	errIs(t, err, lock.ErrNotHeld)

	ch, tok := hold(t, dir, "who", "querying")
	h, err := c.Holder(ctx)
	noErr(t, err)
	equal(t, "holder PID", h.PID, ch.PID())
	equal(t, "holder purpose", h.Purpose, "querying")
	equal(t, "holder token", h.Token, tok)
	if d := time.Since(h.Since); d < -time.Minute || d > time.Minute {
		t.Errorf("holder since %v: %v away from now, want within a minute", h.Since, d)
	}

	ch.Send("purpose installing Office 97")
	ch.Expect("ok", long)
	h, err = c.Holder(ctx)
	noErr(t, err)
	equal(t, "holder purpose", h.Purpose, "installing Office 97")
	equal(t, "holder token", h.Token, tok)

	ch.Send("release")
	ch.Expect("released", long)
	_, err = c.Holder(ctx)
	errIs(t, err, lock.ErrNotHeld)
}

func (s *suite) blocksUntilRelease(t *testing.T) {
	dir := proctest.TempDir(t)
	ch, tok := hold(t, dir, "block", "busy")
	c := s.new(t, dir, "block")
	got := acquireAsync(t, c)
	select {
	case <-got:
		t.Fatal("Acquire returned while another process held the lock")
	case <-time.After(quiet):
	}
	ch.Send("release")
	ch.Expect("released", long)
	select {
	case l := <-got:
		if l == nil {
			t.FailNow()
		}
		if l.Token() <= tok {
			t.Errorf("token %d not above the previous holder's %d", l.Token(), tok)
		}
		if l.Abandoned() {
			t.Error("released cleanly, yet Abandoned")
		}
		noErr(t, l.Release())
	case <-time.After(long):
		t.Fatal("Acquire did not return after the holder released")
	}
}

func (s *suite) cancelNoPhantom(t *testing.T) {
	dir := proctest.TempDir(t)
	ch, _ := hold(t, dir, "cancel", "busy")
	c := s.new(t, dir, "cancel")

	// Warm up whatever per-process state the backend keeps (the file
	// backend keeps an inotify descriptor per lock once a wait has lasted
	// 10 ms), then count.
	ctx0, cancel0 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err := c.Acquire(ctx0)
	cancel0()
	errIs(t, err, context.DeadlineExceeded)
	g0, fd0 := runtime.NumGoroutine(), openFDs()

	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		start := time.Now()
		l, err := c.Acquire(ctx)
		d := time.Since(start)
		cancel()
		if l != nil {
			t.Fatal("Acquire past its deadline returned a lease")
		}
		errIs(t, err, context.DeadlineExceeded)
		if i == 0 {
			t.Logf("deadline 20ms: Acquire returned after %v", d)
		}
	}
	// Cancellation by cancel(), not deadline.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err = c.Acquire(ctx)
	errIs(t, err, context.Canceled)

	// A waiter in another process that gives up must not take the lock
	// later either.
	w := proctest.Start(t, RoleHold, dir, "cancel", "phantom", "50ms")
	w.Expect("waiting", long)
	w.Expect("cancelled", long)

	ch.Send("release")
	ch.Expect("released", long)
	// Right after the real release, a third process gets the lock: no
	// cancelled waiter is holding it, not even briefly.
	for i := 0; i < 20; i++ {
		line := try(t, dir, "cancel")
		if !strings.HasPrefix(line, "locked ") {
			t.Fatalf("try %d after release: %q", i, line)
		}
		_, err := c.Holder(context.Background())
		errIs(t, err, lock.ErrNotHeld)
	}
	w.Send("exit")
	noErr(t, w.Wait(long))
	waitFor(t, "goroutines back to the count before cancelling", func() bool { return runtime.NumGoroutine() <= g0 })
	if n := openFDs(); fd0 >= 0 && n > fd0 {
		t.Errorf("descriptors leaked by cancelled waits: %d open, %d before", n, fd0)
	}
}

func (s *suite) cancelInProcess(t *testing.T) {
	dir := proctest.TempDir(t)
	a := s.new(t, dir, "cancelin")
	b := s.new(t, dir, "cancelin")
	l, err := a.Acquire(context.Background())
	noErr(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err = b.Acquire(ctx)
	errIs(t, err, context.DeadlineExceeded)
	noErr(t, l.Release())
	l, err = b.TryAcquire(context.Background())
	if err != nil {
		t.Fatalf("a cancelled in-process waiter must not hold the lock: %v", err)
	}
	noErr(t, l.Release())
}

func (s *suite) doubleRelease(t *testing.T) {
	c := s.new(t, proctest.TempDir(t), "double")
	l, err := c.Acquire(context.Background())
	noErr(t, err)
	noErr(t, l.Release())
	if err := l.Release(); !errors.Is(err, lock.ErrReleased) {
		t.Errorf("second Release: %v, want %v", err, lock.ErrReleased)
	}
	if err := l.SetPurpose("x"); !errors.Is(err, lock.ErrReleased) {
		t.Errorf("SetPurpose after Release: %v, want %v", err, lock.ErrReleased)
	}
}

func (s *suite) distinctNames(t *testing.T) {
	dir := proctest.TempDir(t)
	ch, _ := hold(t, dir, "name-a", "a")
	c := s.new(t, dir, "name-b")
	l, err := c.TryAcquire(context.Background())
	noErr(t, err)
	noErr(t, l.Release())
	ch.Send("release")
	ch.Expect("released", long)
}

func (s *suite) sameProcess(t *testing.T) {
	dir := proctest.TempDir(t)
	a := s.new(t, dir, "same", lock.WithPurpose("a"))
	b := s.new(t, dir, "same")
	ctx := context.Background()
	la, err := a.Acquire(ctx)
	noErr(t, err)
	_, err = b.TryAcquire(ctx)
	var be *lock.BusyError
	if !errors.As(err, &be) {
		t.Fatalf("TryAcquire while held in this process: %v, want a *lock.BusyError", err)
	}
	equal(t, "holder PID", be.Holder.PID, os.Getpid())
	equal(t, "holder purpose", be.Holder.Purpose, "a")

	// Many goroutines over two coordinators: never two holders.
	var held, maxHeld, total int
	var mu sync.Mutex
	var wg sync.WaitGroup
	noErr(t, la.Release())
	for i := 0; i < 8; i++ {
		c := a
		if i%2 == 1 {
			c = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				l, err := c.Acquire(ctx)
				if err != nil {
					t.Errorf("Acquire: %v", err)
					return
				}
				mu.Lock()
				held++
				maxHeld = max(maxHeld, held)
				total++
				mu.Unlock()
				runtime.Gosched()
				mu.Lock()
				held--
				mu.Unlock()
				if err := l.Release(); err != nil {
					t.Errorf("Release: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	equal(t, "most holders at once", maxHeld, 1)
	equal(t, "acquisitions", total, 1600)
}

func (s *suite) childDoesNotInherit(t *testing.T) {
	dir := proctest.TempDir(t)
	c := s.new(t, dir, "inherit")
	l, err := c.Acquire(context.Background())
	noErr(t, err)
	// A child started while we hold the lock, still running after we
	// release, must not keep it held.
	idle := proctest.Start(t, RoleIdle)
	idle.Expect("ready", long)
	noErr(t, l.Release())
	line := try(t, dir, "inherit")
	if !strings.HasPrefix(line, "locked ") {
		t.Errorf("got %q: the child inherited the lock", line)
	}
	idle.CloseStdin()
	noErr(t, idle.Wait(long))
}

func (s *suite) holderKilled(t *testing.T) {
	dir := proctest.TempDir(t)
	ch, tok := hold(t, dir, "killed", "installing")
	c := s.new(t, dir, "killed")
	got := acquireAsync(t, c)
	time.Sleep(quiet) // let the waiter go to sleep
	start := time.Now()
	ch.Kill()
	select {
	case l := <-got:
		t.Logf("kill -9 of the holder: waiter got the lock after %v", time.Since(start))
		if l == nil {
			t.FailNow()
		}
		if !l.Abandoned() {
			t.Error("the previous holder died holding the lock, yet not Abandoned")
		}
		if l.Token() <= tok {
			t.Errorf("token %d not above the killed holder's %d", l.Token(), tok)
		}
		noErr(t, l.Release())
	case <-time.After(long):
		t.Fatal("the lock was not freed after its holder was killed")
	}
	// The next holder finds a clean release.
	l, err := c.TryAcquire(context.Background())
	noErr(t, err)
	if l.Abandoned() {
		t.Error("released cleanly, yet Abandoned")
	}
	noErr(t, l.Release())
}

func (s *suite) holderNeverContends(t *testing.T) {
	dir := proctest.TempDir(t)
	c := s.new(t, dir, "watch")
	// A child hammers Holder while this process takes the lock over and
	// over with TryAcquire: it must never be busy.
	ch := proctest.Start(t, RoleHolder, dir, "watch")
	ch.Expect("ready", long)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			ch.Send("holder")
			if _, ok := ch.Next(long); !ok {
				return
			}
		}
	}()
	for i := 0; i < 2000; i++ {
		l, err := c.TryAcquire(context.Background())
		if err != nil {
			t.Fatalf("attempt %d: Holder in another process made the lock busy: %v", i, err)
		}
		noErr(t, l.Release())
	}
	close(stop)
	wg.Wait()
}

// stress: 8 processes × n (Options.StressRounds) increments of a counter kept in a plain file
// under the lock end exact, and tokens increase with the counter.
func (s *suite) stress(t *testing.T) {
	const procs = 8
	n := 2000
	if testing.Short() {
		n = 200
	}
	if s.o.StressRounds > 0 {
		n = s.o.StressRounds
	}
	dir := proctest.TempDir(t)
	file := filepath.Join(dir, "counter")
	var children []*proctest.Child
	for i := 0; i < procs; i++ {
		children = append(children, proctest.Start(t, RoleCount, dir, "stress", file, strconv.Itoa(n)))
	}
	tokens := map[int]uint64{}
	for _, ch := range children {
		for {
			line, ok := ch.Next(long)
			if !ok {
				t.Fatal("counter child stopped early")
			}
			if line == "done" {
				break
			}
			f := strings.Fields(line)
			if len(f) != 3 {
				t.Fatalf("line %q: want 3 fields", line)
			}
			v, _ := strconv.Atoi(f[1])
			tok, _ := strconv.ParseUint(f[2], 10, 64)
			if _, dup := tokens[v]; dup {
				t.Fatalf("counter value %d seen twice: mutual exclusion failed", v)
			}
			tokens[v] = tok
		}
		noErr(t, ch.Wait(long))
	}
	b, err := os.ReadFile(file)
	noErr(t, err)
	equal(t, "final count", string(b), strconv.Itoa(procs*n))
	vals := make([]int, 0, len(tokens))
	for v := range tokens {
		vals = append(vals, v)
	}
	sort.Ints(vals)
	for i := 1; i < len(vals); i++ {
		if tokens[vals[i]] <= tokens[vals[i-1]] {
			t.Fatalf("token of increment %d not above the one before: %d <= %d", vals[i], tokens[vals[i]], tokens[vals[i-1]])
		}
	}
}

// acquireAsync starts c.Acquire on a goroutine and delivers its lease,
// nil on error.
func acquireAsync(t *testing.T, c *lock.Coordinator) <-chan *lock.Lease {
	got := make(chan *lock.Lease, 1)
	go func() {
		l, err := c.Acquire(context.Background())
		if err != nil {
			t.Errorf("Acquire: %v", err)
		}
		got <- l
	}()
	return got
}

// noErr stops the test when err is not nil.
func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// errIs stops the test unless err matches target.
func errIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want one matching %v", err, target)
	}
}

// equal reports a mismatch of what without stopping the test.
func equal[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

// waitFor polls cond until it holds, failing the test after a long time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(long)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// openFDs counts this process's open descriptors, or -1 if the
// platform does not say. Windows does not: under Wine /proc/self/fd
// exists (as Z:\proc\self\fd), but it lists the Unix descriptors of
// the Wine process, which grow with every OS thread the Go runtime
// starts (Wine gives each thread its own pipes), not with handles.
func openFDs() int {
	if runtime.GOOS == "windows" {
		return -1
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}
