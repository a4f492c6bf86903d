package etcdlock_test

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

// The benchmarks run against the embedded server of TestMain, without
// fsync by default; AGENTLOCK_ETCD_TEST_FSYNC=1 makes it fsync its log
// as a production server does. See BENCHMARKS.md.

// benchCoordinators returns n coordinators of one lock, each with a
// backend (and so a session) of its own, as n processes would have.
func benchCoordinators(b *testing.B, name string, n int) []*lock.Coordinator {
	b.Helper()
	return benchCoordinatorsAt(b, prefixFor(proctest.TempDir(b)), name, n)
}

// benchCoordinatorsAt is benchCoordinators on prefix.
func benchCoordinatorsAt(b *testing.B, prefix, name string, n int) []*lock.Coordinator {
	b.Helper()
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

// mustAcquire acquires the lock of c, or ends the benchmark.
func mustAcquire(b *testing.B, c *lock.Coordinator) *lock.Lease {
	b.Helper()
	l, err := c.Acquire(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkAcquireRelease: uncontended Acquire + Release, with the
// holder record (two round trips: one transaction each).
func BenchmarkAcquireRelease(b *testing.B) {
	c := benchCoordinators(b, "bench", 1)[0]
	ctx := context.Background()
	// The first acquisition grants the session lease.
	l := mustAcquire(b, c)
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
	l := mustAcquire(b, c)
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
	l := mustAcquire(b, c)
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
	prefix := prefixFor(proctest.TempDir(b))
	coords := benchCoordinatorsAt(b, prefix, "handoff", 2)
	ctx := context.Background()
	l := mustAcquire(b, coords[0])
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
		waitQueued(b, prefix, "handoff")
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

// waitQueued returns once a waiter has joined the queue of the lock
// name under prefix, behind its holder, and has had time to start
// watching its predecessor's key. The join is a key to wait for; the
// watch has no sign outside the waiter, and a release it has not yet
// started watching for reaches it only after the server's catch-up
// loop (up to 100ms), so it is given 2ms, plenty on loopback.
func waitQueued(b *testing.B, prefix, name string) {
	b.Helper()
	deadline := time.Now().Add(long)
	for len(queueKeys(b, prefix, name)) < 2 {
		if time.Now().After(deadline) {
			b.Fatal("the waiter never joined the queue")
		}
	}
	time.Sleep(2 * time.Millisecond)
}

// BenchmarkHandoffMutex: as BenchmarkHandoff, between an agentlock
// holder and a concurrency.Mutex (what `etcdctl lock` runs) waiting on
// the same lock, and back. The Mutex is given 150ms to queue: it
// watches from a revision the server has already reached, and such a
// watch only starts to report after the server's catch-up loop (every
// 100ms) has run; until then a Mutex waiter, whoever holds the lock,
// hears of a release late.
func BenchmarkHandoffMutex(b *testing.B) {
	cli, err := client()
	if err != nil {
		b.Fatal(err)
	}
	prefix := prefixFor(proctest.TempDir(b))
	c, err := lock.New("mutex", lock.WithBackend(newBackendAt(b, prefix)))
	if err != nil {
		b.Fatal(err)
	}
	s, err := concurrency.NewSession(cli)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	m := concurrency.NewMutex(s, prefix+"mutex")
	ctx := context.Background()
	for _, dir := range []string{"to-mutex", "from-mutex"} {
		b.Run(dir, func(b *testing.B) {
			var lat []time.Duration
			for i := 0; i < b.N; i++ {
				var d time.Duration
				var err error
				if dir == "to-mutex" {
					d, err = handoffToMutex(ctx, c, m)
				} else {
					d, err = handoffFromMutex(ctx, c, m)
				}
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, d)
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		})
	}
}

func handoffToMutex(ctx context.Context, c *lock.Coordinator, m *concurrency.Mutex) (time.Duration, error) {
	l, err := c.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	locked := make(chan error, 1)
	go func() { locked <- m.Lock(ctx) }()
	time.Sleep(150 * time.Millisecond)
	start := time.Now()
	if err := l.Release(); err != nil {
		return 0, err
	}
	if err := <-locked; err != nil {
		return 0, err
	}
	d := time.Since(start)
	return d, m.Unlock(ctx)
}

func handoffFromMutex(ctx context.Context, c *lock.Coordinator, m *concurrency.Mutex) (time.Duration, error) {
	if err := m.Lock(ctx); err != nil {
		return 0, err
	}
	got := make(chan error, 1)
	var l *lock.Lease
	go func() {
		var err error
		l, err = c.Acquire(ctx)
		got <- err
	}()
	time.Sleep(150 * time.Millisecond)
	start := time.Now()
	if err := m.Unlock(ctx); err != nil {
		return 0, err
	}
	if err := <-got; err != nil {
		return 0, err
	}
	d := time.Since(start)
	return d, l.Release()
}
