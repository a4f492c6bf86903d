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
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/locktest/proctest"
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
	require.NoError(t, err)
	c, err := lock.New(name, append([]lock.Option{lock.WithBackend(b)}, opts...)...)
	require.NoError(t, err)
	return c
}

// hold starts a child that holds name with purpose and waits until it
// reports the lock taken.
func hold(t *testing.T, dir, name, purpose string) (*proctest.Child, uint64) {
	t.Helper()
	ch := proctest.Start(t, "locktest-hold", dir, name, purpose)
	ch.Expect("waiting", long)
	f := strings.Fields(ch.Expect("locked", long))
	tok, err := strconv.ParseUint(f[1], 10, 64)
	require.NoError(t, err)
	return ch, tok
}

func try(t *testing.T, dir, name string) string {
	t.Helper()
	ch := proctest.Start(t, "locktest-try", dir, name)
	line, ok := ch.Next(long)
	require.True(t, ok, "try child said nothing")
	ch.CloseStdin()
	require.NoError(t, ch.Wait(long))
	return line
}

func (s *suite) tryFreeAndBusy(t *testing.T) {
	dir := proctest.TempDir(t)
	c := s.new(t, dir, "tryfree", lock.WithPurpose("installing X"))
	ctx := context.Background()

	l, err := c.TryAcquire(ctx)
	require.NoError(t, err)
	assert.NotZero(t, l.Token())
	assert.Equal(t, os.Getpid(), l.Holder().PID)
	assert.Equal(t, "installing X", l.Holder().Purpose)

	line := try(t, dir, "tryfree")
	assert.Equal(t, fmt.Sprintf("busy %d installing X", os.Getpid()), line)

	require.NoError(t, l.Release())
	line = try(t, dir, "tryfree")
	assert.True(t, strings.HasPrefix(line, "locked "), "got %q", line)

	// The child's token is later than ours, and ours again later.
	childTok, _ := strconv.ParseUint(strings.Fields(line)[1], 10, 64)
	assert.Greater(t, childTok, l.Token())
	l2, err := c.TryAcquire(ctx)
	require.NoError(t, err)
	assert.Greater(t, l2.Token(), childTok)
	require.NoError(t, l2.Release())
}

func (s *suite) holderAcrossProcesses(t *testing.T) {
	dir := proctest.TempDir(t)
	c := s.new(t, dir, "who")
	ctx := context.Background()
	_, err := c.Holder(ctx)
	require.ErrorIs(t, err, lock.ErrNotHeld)

	ch, tok := hold(t, dir, "who", "querying")
	h, err := c.Holder(ctx)
	require.NoError(t, err)
	assert.Equal(t, ch.PID(), h.PID)
	assert.Equal(t, "querying", h.Purpose)
	assert.Equal(t, tok, h.Token)
	assert.WithinDuration(t, time.Now(), h.Since, time.Minute)

	ch.Send("purpose installing Office 97")
	ch.Expect("ok", long)
	h, err = c.Holder(ctx)
	require.NoError(t, err)
	assert.Equal(t, "installing Office 97", h.Purpose)
	assert.Equal(t, tok, h.Token)

	ch.Send("release")
	ch.Expect("released", long)
	_, err = c.Holder(ctx)
	require.ErrorIs(t, err, lock.ErrNotHeld)
}

func (s *suite) blocksUntilRelease(t *testing.T) {
	dir := proctest.TempDir(t)
	ch, tok := hold(t, dir, "block", "busy")
	c := s.new(t, dir, "block")
	got := make(chan *lock.Lease, 1)
	go func() {
		l, err := c.Acquire(context.Background())
		assert.NoError(t, err)
		got <- l
	}()
	select {
	case <-got:
		t.Fatal("Acquire returned while another process held the lock")
	case <-time.After(quiet):
	}
	ch.Send("release")
	ch.Expect("released", long)
	select {
	case l := <-got:
		require.NotNil(t, l)
		assert.Greater(t, l.Token(), tok)
		assert.False(t, l.Abandoned(), "released cleanly, yet Abandoned")
		require.NoError(t, l.Release())
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
	require.ErrorIs(t, err, context.DeadlineExceeded)
	g0, fd0 := runtime.NumGoroutine(), openFDs()

	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		start := time.Now()
		l, err := c.Acquire(ctx)
		d := time.Since(start)
		cancel()
		require.Nil(t, l)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		if i == 0 {
			t.Logf("deadline 20ms: Acquire returned after %v", d)
		}
	}
	// Cancellation by cancel(), not deadline.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err = c.Acquire(ctx)
	require.ErrorIs(t, err, context.Canceled)

	// A waiter in another process that gives up must not take the lock
	// later either.
	w := proctest.Start(t, "locktest-hold", dir, "cancel", "phantom", "50ms")
	w.Expect("waiting", long)
	w.Expect("cancelled", long)

	ch.Send("release")
	ch.Expect("released", long)
	// Right after the real release, a third process gets the lock: no
	// cancelled waiter is holding it, not even briefly.
	for i := 0; i < 20; i++ {
		line := try(t, dir, "cancel")
		require.True(t, strings.HasPrefix(line, "locked "), "try %d after release: %q", i, line)
		_, err := c.Holder(context.Background())
		require.ErrorIs(t, err, lock.ErrNotHeld)
	}
	w.Send("exit")
	require.NoError(t, w.Wait(long))
	waitFor(t, "goroutines back to the count before cancelling", func() bool { return runtime.NumGoroutine() <= g0 })
	if fd0 >= 0 {
		assert.LessOrEqual(t, openFDs(), fd0, "descriptors leaked by cancelled waits")
	}
}

func (s *suite) cancelInProcess(t *testing.T) {
	dir := proctest.TempDir(t)
	a := s.new(t, dir, "cancelin")
	b := s.new(t, dir, "cancelin")
	l, err := a.Acquire(context.Background())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err = b.Acquire(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, l.Release())
	l, err = b.TryAcquire(context.Background())
	require.NoError(t, err, "a cancelled in-process waiter must not hold the lock")
	require.NoError(t, l.Release())
}

func (s *suite) doubleRelease(t *testing.T) {
	c := s.new(t, proctest.TempDir(t), "double")
	l, err := c.Acquire(context.Background())
	require.NoError(t, err)
	require.NoError(t, l.Release())
	assert.ErrorIs(t, l.Release(), lock.ErrReleased)
	assert.ErrorIs(t, l.SetPurpose("x"), lock.ErrReleased)
}

func (s *suite) distinctNames(t *testing.T) {
	dir := proctest.TempDir(t)
	ch, _ := hold(t, dir, "name-a", "a")
	c := s.new(t, dir, "name-b")
	l, err := c.TryAcquire(context.Background())
	require.NoError(t, err)
	require.NoError(t, l.Release())
	ch.Send("release")
	ch.Expect("released", long)
}

func (s *suite) sameProcess(t *testing.T) {
	dir := proctest.TempDir(t)
	a := s.new(t, dir, "same", lock.WithPurpose("a"))
	b := s.new(t, dir, "same")
	ctx := context.Background()
	la, err := a.Acquire(ctx)
	require.NoError(t, err)
	_, err = b.TryAcquire(ctx)
	var be *lock.BusyError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, os.Getpid(), be.Holder.PID)
	assert.Equal(t, "a", be.Holder.Purpose)

	// Many goroutines over two coordinators: never two holders.
	var held, maxHeld, total int
	var mu sync.Mutex
	var wg sync.WaitGroup
	require.NoError(t, la.Release())
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
				if !assert.NoError(t, err) {
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
				assert.NoError(t, l.Release())
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, maxHeld)
	assert.Equal(t, 1600, total)
}

func (s *suite) childDoesNotInherit(t *testing.T) {
	dir := proctest.TempDir(t)
	c := s.new(t, dir, "inherit")
	l, err := c.Acquire(context.Background())
	require.NoError(t, err)
	// A child started while we hold the lock, still running after we
	// release, must not keep it held.
	idle := proctest.Start(t, "locktest-idle")
	idle.Expect("ready", long)
	require.NoError(t, l.Release())
	line := try(t, dir, "inherit")
	assert.True(t, strings.HasPrefix(line, "locked "), "got %q: the child inherited the lock", line)
	idle.CloseStdin()
	require.NoError(t, idle.Wait(long))
}

func (s *suite) holderKilled(t *testing.T) {
	dir := proctest.TempDir(t)
	ch, tok := hold(t, dir, "killed", "installing")
	c := s.new(t, dir, "killed")
	got := make(chan *lock.Lease, 1)
	go func() {
		l, err := c.Acquire(context.Background())
		assert.NoError(t, err)
		got <- l
	}()
	time.Sleep(quiet) // let the waiter go to sleep
	start := time.Now()
	ch.Kill()
	select {
	case l := <-got:
		t.Logf("kill -9 of the holder: waiter got the lock after %v", time.Since(start))
		require.NotNil(t, l)
		assert.True(t, l.Abandoned(), "the previous holder died holding the lock")
		assert.Greater(t, l.Token(), tok)
		require.NoError(t, l.Release())
	case <-time.After(long):
		t.Fatal("the lock was not freed after its holder was killed")
	}
	// The next holder finds a clean release.
	l, err := c.TryAcquire(context.Background())
	require.NoError(t, err)
	assert.False(t, l.Abandoned())
	require.NoError(t, l.Release())
}

func (s *suite) holderNeverContends(t *testing.T) {
	dir := proctest.TempDir(t)
	c := s.new(t, dir, "watch")
	// A child hammers Holder while this process takes the lock over and
	// over with TryAcquire: it must never be busy.
	ch := proctest.Start(t, "locktest-holder", dir, "watch")
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
		require.NoError(t, err, "attempt %d: Holder in another process made the lock busy", i)
		require.NoError(t, l.Release())
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
		children = append(children, proctest.Start(t, "locktest-count", dir, "stress", file, strconv.Itoa(n)))
	}
	tokens := map[int]uint64{}
	for _, ch := range children {
		for {
			line, ok := ch.Next(long)
			require.True(t, ok, "counter child stopped early")
			if line == "done" {
				break
			}
			f := strings.Fields(line)
			require.Len(t, f, 3, "line %q", line)
			v, _ := strconv.Atoi(f[1])
			tok, _ := strconv.ParseUint(f[2], 10, 64)
			_, dup := tokens[v]
			require.False(t, dup, "counter value %d seen twice: mutual exclusion failed", v)
			tokens[v] = tok
		}
		require.NoError(t, ch.Wait(long))
	}
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(procs*n), string(b))
	vals := make([]int, 0, len(tokens))
	for v := range tokens {
		vals = append(vals, v)
	}
	sort.Ints(vals)
	for i := 1; i < len(vals); i++ {
		require.Greater(t, tokens[vals[i]], tokens[vals[i-1]], "token of increment %d not above the one before", vals[i])
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
