package lock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/agentlock/agentlock/locktest/proctest"

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
func BenchmarkTryAcquireBusy(b *testing.B) {
	dir := proctest.TempDir(b)
	ch := proctest.Start(b, "locktest-hold", dir, "bench", "installing")
	ch.Expect("waiting", time.Minute)
	ch.Expect("locked", time.Minute)
	c, _ := lock.New("bench", lock.WithDir(dir))
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
