package lock_test

import (
	"bufio"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentlock/agentlock/lock/locktest"
	"github.com/agentlock/agentlock/lock/locktest/proctest"

	"github.com/agentlock/agentlock/lock"
)

// BenchmarkAcquireRelease: uncontended Acquire+Release with a holder
// record, in one process (the cross-process figures and their ratios to
// raw flock(2) come from go run ./internal/lockbench; see BENCHMARKS.md).
func BenchmarkAcquireRelease(b *testing.B) {
	c, err := lock.New("bench", lock.WithDir(proctest.TempDir(b)), lock.WithPurpose("benchmarking"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l, err := c.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Release(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTryAcquireBusy: a failing TryAcquire that reports the
// holder, which is another process.
func BenchmarkTryAcquireBusy(b *testing.B) { benchBusy(b, heldByChild(b)) }

// heldByChild returns a Coordinator of a lock that a child process
// holds with purpose "installing".
func heldByChild(b *testing.B) *lock.Coordinator {
	dir := proctest.TempDir(b)
	ch := proctest.Start(b, locktest.RoleHold, dir, "bench", "installing")
	ch.Expect("waiting", time.Minute)
	ch.Expect("locked", time.Minute)
	c, err := lock.New("bench", lock.WithDir(dir))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// benchBusy measures TryAcquire on c's lock, held with purpose
// "installing".
func benchBusy(b *testing.B, c *lock.Coordinator) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, err := c.TryAcquire(ctx)
		var be *lock.BusyError
		if !errors.As(err, &be) || be.Holder.Purpose != "installing" {
			b.Fatal(err)
		}
	}
}

// BenchmarkHolderOtherProcess: Holder while another process holds the
// lock. The record is decoded once; each call then checks that its
// holder is still alive, with one poll of a pidfd on Linux rather than
// a read of /proc.
func BenchmarkHolderOtherProcess(b *testing.B) {
	c := heldByChild(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if h, err := c.Holder(ctx); err != nil || h.Purpose != "installing" {
			b.Fatal(h, err)
		}
	}
}

// BenchmarkTryAcquireBusyInProcess: the same with the holder in this
// process (no system call: the in-process semaphore answers).
func BenchmarkTryAcquireBusyInProcess(b *testing.B) {
	dir := proctest.TempDir(b)
	holder, err := lock.New("bench", lock.WithDir(dir), lock.WithPurpose("installing"))
	if err != nil {
		b.Fatal(err)
	}
	l, err := holder.Acquire(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer l.Release()
	c, _ := lock.New("bench", lock.WithDir(dir))
	benchBusy(b, c)
}

// BenchmarkHolder: reading the holder record without contending.
func BenchmarkHolder(b *testing.B) {
	dir := proctest.TempDir(b)
	c, _ := lock.New("bench", lock.WithDir(dir), lock.WithPurpose("installing"))
	l, err := c.Acquire(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer l.Release()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Holder(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

const roleBenchHolder = "bench-holder"

func init() { proctest.Role(roleBenchHolder, benchHolderRole) }

// benchHolderRole takes the lock on "hold D", says "held", keeps the
// lock D more and releases it, saying "released T" with the wall clock
// (ns) just before the release.
func benchHolderRole(args []string, in *bufio.Scanner, out *proctest.Writer) int {
	c, err := lock.New(args[1], lock.WithDir(args[0]))
	if err != nil {
		out.Println("error", err)
		return 1
	}
	for in.Scan() {
		d, err := time.ParseDuration(strings.TrimPrefix(in.Text(), "hold "))
		if err != nil {
			out.Println("error", err)
			return 1
		}
		l, err := c.Acquire(context.Background())
		if err != nil {
			out.Println("error", err)
			return 1
		}
		out.Println("held")
		time.Sleep(d)
		t := time.Now().UnixNano()
		if err := l.Release(); err != nil {
			out.Println("error", err)
			return 1
		}
		out.Println("released", t)
	}
	return 0
}

// BenchmarkHandoff: this process waits in Acquire while another holds
// the lock for the sub-benchmark's time, so that a CPU profile
// (-cpuprofile) covers the waiter's side of a hand-off: the sleep, the
// wake-up and the way out. The
// hand-off latency, from just before the holder's release to the
// return of Acquire, is reported as p50-µs and p99-µs; ns/op is mostly
// the hold. The cross-process figures and their ratios to raw flock(2)
// come from go run ./internal/lockbench (BENCHMARKS.md).
func BenchmarkHandoff(b *testing.B) {
	for _, hold := range []time.Duration{time.Millisecond, 20 * time.Millisecond} {
		b.Run("hold="+hold.String(), func(b *testing.B) {
			dir := proctest.TempDir(b)
			holder := proctest.Start(b, roleBenchHolder, dir, "bench")
			c, err := lock.New("bench", lock.WithDir(dir))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			var lat []time.Duration
			for b.Loop() {
				holder.Send("hold " + hold.String())
				holder.Expect("held", time.Minute)
				l, err := c.Acquire(ctx)
				t1 := time.Now().UnixNano()
				if err != nil {
					b.Fatal(err)
				}
				t0, err := strconv.ParseInt(strings.TrimPrefix(holder.Expect("released ", time.Minute), "released "), 10, 64)
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Duration(t1-t0))
				if err := l.Release(); err != nil {
					b.Fatal(err)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds()), "p99-µs")
		})
	}
}
