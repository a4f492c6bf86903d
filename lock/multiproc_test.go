package lock_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

// Multi-process tests run on every backend of this platform: the file
// backend, and the named-mutex backend (a kernel mutex on Windows, its
// flock equivalent elsewhere). Children are this test binary in a role
// (see locktest/proctest, and TestMain in main_test.go); they get the backend kind, the directory and
// the lock name as arguments.

var kinds = []string{"file", "mutex"}

// newCoordinator returns a coordinator for name on the backend kind,
// keeping its files in dir.
func newCoordinator(kind, dir, name string) (*lock.Coordinator, error) {
	switch kind {
	case "file":
		return lock.New(name, lock.WithDir(dir))
	case "mutex":
		b, err := lock.NewNamedMutexBackend(lock.WithMutexDir(dir))
		if err != nil {
			return nil, err
		}
		return lock.New(name, lock.WithBackend(b))
	}
	return nil, fmt.Errorf("unknown backend kind %q", kind)
}

func mustCoordinator(t testing.TB, kind, dir, name string) *lock.Coordinator {
	t.Helper()
	c, err := newCoordinator(kind, dir, name)
	if err != nil {
		t.Fatalf("New(%q) on %s: %v", name, kind, err)
	}
	return c
}

// lockName returns a name unique to this run: kernel objects outlive a
// test directory, so a fixed name could meet one left by another run.
func lockName(t testing.TB) string {
	return fmt.Sprintf("t%d-%x", os.Getpid(), rand.Uint32())
}

// holdRole acquires the lock and reports "held TOKEN ABANDONED", then
// releases it when told "release" and reports "released NANOS" (the
// wall clock just before Release). If its input closes it exits
// without releasing.
func holdRole(args []string, in *bufio.Scanner, out *proctest.Writer) int {
	c, err := newCoordinator(args[0], args[1], args[2])
	if err != nil {
		out.Println("error", err)
		return 1
	}
	l, err := c.Acquire(context.Background(), lock.WithPurpose("holding for a test"))
	if err != nil {
		out.Println("error", err)
		return 1
	}
	out.Println("held", l.Token(), l.Abandoned())
	for in.Scan() {
		if in.Text() == "release" {
			now := time.Now().UnixNano()
			if err := l.Release(); err != nil {
				out.Println("error", err)
				return 1
			}
			out.Println("released", now)
			return 0
		}
	}
	return 0
}

// tryRole makes one TryAcquire and reports "busy PID" or "got
// ABANDONED" (releasing at once).
func tryRole(args []string, in *bufio.Scanner, out *proctest.Writer) int {
	c, err := newCoordinator(args[0], args[1], args[2])
	if err != nil {
		out.Println("error", err)
		return 1
	}
	l, err := c.TryAcquire(context.Background())
	var be *lock.BusyError
	switch {
	case errors.As(err, &be):
		out.Println("busy", be.Holder.PID)
	case err != nil:
		out.Println("error", err)
		return 1
	default:
		out.Println("got", l.Abandoned())
		l.Release()
	}
	return 0
}

// handoffRole takes turns with the parent: on "go" it acquires (the
// parent holds the lock then), reports "got NANOS" with the wall clock
// right after Acquire returned, and releases on "release".
func handoffRole(args []string, in *bufio.Scanner, out *proctest.Writer) int {
	c, err := newCoordinator(args[0], args[1], args[2])
	if err != nil {
		out.Println("error", err)
		return 1
	}
	var l *lock.Lease
	for in.Scan() {
		switch in.Text() {
		case "go":
			l, err = c.Acquire(context.Background())
			if err != nil {
				out.Println("error", err)
				return 1
			}
			out.Println("got", time.Now().UnixNano())
		case "release":
			l.Release()
			out.Println("released")
		}
	}
	return 0
}

func forKinds(t *testing.T, f func(t *testing.T, kind string)) {
	for _, k := range kinds {
		t.Run(k, func(t *testing.T) { f(t, k) })
	}
}

func TestCrossProcessExclusion(t *testing.T) {
	forKinds(t, func(t *testing.T, kind string) {
		dir, name := proctest.TempDir(t), lockName(t)
		c := mustCoordinator(t, kind, dir, name)
		l, err := c.Acquire(context.Background(), lock.WithPurpose("testing"))
		if err != nil {
			t.Fatal(err)
		}
		if h, err := c.Holder(context.Background()); err != nil || h.PID != os.Getpid() || h.Purpose != "testing" {
			t.Fatalf("Holder while held = %+v, %v; want this process, purpose testing", h, err)
		}
		ch := proctest.Start(t, roleTry, kind, dir, name)
		if got, want := ch.Expect("busy", 30*time.Second), fmt.Sprint("busy ", os.Getpid()); got != want {
			t.Fatalf("child saw %q, want %q", got, want)
		}
		first := l.Token()
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Holder(context.Background()); !errors.Is(err, lock.ErrNotHeld) {
			t.Fatalf("Holder after release: %v, want ErrNotHeld", err)
		}
		ch = proctest.Start(t, roleTry, kind, dir, name)
		ch.Expect("got false", 30*time.Second)
		if err := ch.Wait(30 * time.Second); err != nil {
			t.Fatalf("child: %v", err)
		}
		l, err = c.TryAcquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release()
		if l.Token() <= first {
			t.Errorf("token %d after %d: not increasing", l.Token(), first)
		}
	})
}

func TestKilledHolderIsAbandoned(t *testing.T) {
	forKinds(t, func(t *testing.T, kind string) {
		dir, name := proctest.TempDir(t), lockName(t)
		ch := proctest.Start(t, roleHold, kind, dir, name)
		ch.Expect("held", 30*time.Second)
		c := mustCoordinator(t, kind, dir, name)
		if h, err := c.Holder(context.Background()); err != nil || h.PID != ch.PID() {
			t.Fatalf("Holder = %+v, %v; want pid %d", h, err, ch.PID())
		}
		type result struct {
			l   *lock.Lease
			err error
			at  time.Time
		}
		res := make(chan result, 1)
		go func() {
			l, err := c.Acquire(context.Background())
			res <- result{l, err, time.Now()}
		}()
		mustBlock(t, res)
		killed := time.Now()
		ch.Kill()
		r := <-res
		if r.err != nil {
			t.Fatal(r.err)
		}
		defer r.l.Release()
		t.Logf("%s: waiter got the lock %v after kill of the holder", kind, r.at.Sub(killed))
		if !r.l.Abandoned() {
			t.Error("lease after a killed holder: Abandoned() = false, want true")
		}
	})
}

func TestCancelLeavesNoPhantom(t *testing.T) {
	forKinds(t, func(t *testing.T, kind string) {
		dir, name := proctest.TempDir(t), lockName(t)
		holder := proctest.Start(t, roleHold, kind, dir, name)
		holder.Expect("held", 30*time.Second)
		c := mustCoordinator(t, kind, dir, name)
		for i := 0; i < 5; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			start := time.Now()
			_, err := c.Acquire(ctx)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Acquire on a held lock with a deadline: %v, want DeadlineExceeded", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("cancelled Acquire returned after %v", d)
			}
		}
		holder.Send("release")
		holder.Expect("released", 30*time.Second)
		// Right after the real release, nobody holds it: not this
		// process's cancelled waits either.
		third := proctest.Start(t, roleTry, kind, dir, name)
		third.Expect("got", 30*time.Second)
	})
}

// mustBlock checks that nothing arrives on ch for a quiet period.
func mustBlock[T any](t *testing.T, ch <-chan T) {
	t.Helper()
	select {
	case <-ch:
		t.Fatal("acquired a lock that another process holds")
	case <-time.After(100 * time.Millisecond):
	}
}

// TestMeasure logs handoff and kill-to-acquire medians. It only runs
// with AGENTLOCK_MEASURE=1 (it is a measurement, not a check).
func TestMeasure(t *testing.T) {
	if os.Getenv("AGENTLOCK_MEASURE") != "1" {
		t.Skip("set AGENTLOCK_MEASURE=1 to measure")
	}
	const rounds = 200
	forKinds(t, func(t *testing.T, kind string) {
		dir, name := proctest.TempDir(t), lockName(t)
		c := mustCoordinator(t, kind, dir, name)
		ch := proctest.Start(t, roleHandoff, kind, dir, name)
		var ds []time.Duration
		for i := 0; i < rounds; i++ {
			l, err := c.Acquire(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			ch.Send("go")
			time.Sleep(10 * time.Millisecond) // let the child block
			released := time.Now()
			l.Release()
			line := ch.Expect("got", 30*time.Second)
			ns, _ := strconv.ParseInt(strings.TrimPrefix(line, "got "), 10, 64)
			ds = append(ds, time.Unix(0, ns).Sub(released))
			ch.Send("release")
			ch.Expect("released", 30*time.Second)
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		t.Logf("%s: handoff over %d rounds: median %v, p90 %v, min %v", kind, rounds, ds[len(ds)/2], ds[len(ds)*9/10], ds[0])

		var ks []time.Duration
		for i := 0; i < 20; i++ {
			h := proctest.Start(t, roleHold, kind, dir, name)
			h.Expect("held", 30*time.Second)
			done := make(chan time.Time, 1)
			go func() {
				l, err := c.Acquire(context.Background())
				if err == nil {
					done <- time.Now()
					l.Release()
				}
			}()
			time.Sleep(20 * time.Millisecond) // the waiter is asleep now
			k := time.Now()
			h.Kill()
			ks = append(ks, (<-done).Sub(k))
		}
		sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
		t.Logf("%s: kill of the holder to waiter acquiring, 20 rounds: median %v, max %v", kind, ks[len(ks)/2], ks[len(ks)-1])
	})
}

// TestThreadAffinityStress acquires and releases from many goroutines
// with GOMAXPROCS=8, so that acquisitions and releases happen on
// different goroutines and threads. On Windows a release from a thread
// that does not own the mutex would fail with ERROR_NOT_OWNER; there
// must be no error at all.
func TestThreadAffinityStress(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(8))
	forKinds(t, func(t *testing.T, kind string) {
		dir, name := proctest.TempDir(t), lockName(t)
		const rounds, workers = 1000, 8
		cs := make([]*lock.Coordinator, workers)
		for i := range cs {
			cs[i] = mustCoordinator(t, kind, dir, name)
		}
		leases := make(chan *lock.Lease) // acquired on one goroutine, released on another
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []error
		fail := func(err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
		var inside atomic.Int32
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < rounds/workers; i++ {
					l, err := cs[w].Acquire(context.Background())
					if err != nil {
						fail(err)
						continue
					}
					if inside.Add(1) != 1 {
						fail(errors.New("two leases at once"))
					}
					runtime.Gosched()
					inside.Add(-1)
					leases <- l
				}
			}()
		}
		released := make(chan struct{})
		go func() {
			for l := range leases {
				if err := l.Release(); err != nil {
					fail(err)
				}
			}
			close(released)
		}()
		wg.Wait()
		close(leases)
		<-released
		for _, err := range errs[:min(len(errs), 5)] {
			t.Error(err)
		}
		if len(errs) > 0 {
			t.Fatalf("%d errors in %d rounds", len(errs), rounds)
		}
	})
}
