package etcdlock_test

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/locktest/proctest"
)

// The benchmarks run against the embedded server of TestMain, without
// fsync by default; AGENTLOCK_ETCD_TEST_FSYNC=1 makes it fsync its log
// as a production server does. See BENCHMARKS.md.

// benchCoordinators returns n coordinators of one lock, each with a
// backend (and so a session) of its own, as n processes would have.
func benchCoordinators(b *testing.B, name string, n int) []*lock.Coordinator {
	b.Helper()
	prefix := prefixFor(proctest.TempDir(b))
	var cs []*lock.Coordinator
	for i := 0; i < n; i++ {
		c, err := lock.New(name, lock.WithBackend(newBackendAt(b, prefix)))
		if err != nil {
			b.Fatal(err)
		}
		cs = append(cs, c)
	}
	return cs
}

// BenchmarkAcquireRelease: uncontended Acquire + Release, with the
// holder record (two round trips: one transaction each).
func BenchmarkAcquireRelease(b *testing.B) {
	c := benchCoordinators(b, "bench", 1)[0]
	ctx := context.Background()
	// The first acquisition grants the session lease.
	l, err := c.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	l.Release()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l, err := c.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Release(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTryAcquireBusy: TryAcquire on a held lock, which reads the
// holder in the same round trip and writes nothing.
func BenchmarkTryAcquireBusy(b *testing.B) {
	cs := benchCoordinators(b, "busy", 2)
	c, d := cs[0], cs[1]
	ctx := context.Background()
	l, err := c.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Release()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, err := d.TryAcquire(ctx)
		var be *lock.BusyError
		if !errors.As(err, &be) || be.Holder.PID == 0 {
			b.Fatalf("got %v (%+v), want busy with holder", err, be)
		}
	}
}

// BenchmarkHolder: Holder of a held lock (one linearizable read).
func BenchmarkHolder(b *testing.B) {
	c := benchCoordinators(b, "holder", 1)[0]
	ctx := context.Background()
	l, err := c.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Release()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Holder(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandoff: the time from the start of the holder's Release to
// the return of the Acquire of a waiter blocked on the lock (another
// backend, so another session, as another process would have). It
// reports the median and the 99th percentile.
func BenchmarkHandoff(b *testing.B) {
	coords := benchCoordinators(b, "handoff", 2)
	ctx := context.Background()
	l, err := coords[0].Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		waiter := coords[(i+1)%2]
		got := make(chan *lock.Lease)
		go func() {
			l, err := waiter.Acquire(ctx)
			if err != nil {
				b.Error(err)
			}
			got <- l
		}()
		// Let the waiter join the queue and start watching.
		waitQueued(b, waiter)
		start := time.Now()
		if err := l.Release(); err != nil {
			b.Fatal(err)
		}
		l = <-got
		if l == nil {
			b.FailNow()
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	l.Release()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// waitQueued gives a waiter time to be queued and watching. The
// backend has no hook for it; 2ms is plenty on loopback.
func waitQueued(b *testing.B, _ *lock.Coordinator) {
	b.Helper()
	time.Sleep(2 * time.Millisecond)
}
