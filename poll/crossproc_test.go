package poll

import (
	"context"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

// startHolder starts a child that holds the lock in dir with purpose for
// hold, and returns it with the token of its lease.
func startHolder(t *testing.T, dir, purpose string, hold time.Duration) (*proctest.Child, uint64) {
	t.Helper()
	child := proctest.Start(t, roleHold, dir, purpose, hold.String())
	line := child.Expect("held ", 10*time.Second)
	token, err := strconv.ParseUint(strings.TrimPrefix(line, "held "), 10, 64)
	require.NoError(t, err)
	return child, token
}

// The timings here are loose on purpose: only orderings and counts with
// generous bounds are asserted, never exact times.
const (
	crossInterval = 100 * time.Millisecond
	crossGrace    = 500 * time.Millisecond
	crossRate     = 400 * time.Millisecond
	crossHold     = 1500 * time.Millisecond
)

func TestCrossProcessGraceRateAndWorkOnce(t *testing.T) {
	dir := proctest.TempDir(t)
	child, childToken := startHolder(t, dir, "installing X", crossHold)
	c, err := lock.New(crossLock, lock.WithDir(dir))
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		events    []Event
		looks     int
		errs      []error
		works     int
		workToken uint64
		workAt    time.Time
	)
	policy := All(After(crossGrace), RateLimit(crossRate))
	p, err := New(c, func(_ context.Context, l *lock.Lease) error {
		works++
		workToken, workAt = l.Token(), time.Now()
		cancel() // stop after the first cycle that gets the lock
		return nil
	},
		WithInterval(crossInterval), WithImmediateStart(),
		WithPolicy(PolicyFunc(func(e Event) bool { looks++; return policy.Notify(e) })),
		OnBusy(func(e Event) { events = append(events, e) }),
		OnError(func(err error) { errs = append(errs, err) }))
	require.NoError(t, err)

	require.ErrorIs(t, p.Run(ctx), context.Canceled)
	require.NoError(t, child.Wait(10*time.Second))
	t.Logf("%d busy looks, %d notifications, work at token %d (child's %d)", looks, len(events), workToken, childToken)

	assert.Empty(t, errs)
	assert.Equal(t, 1, works, "the work ran exactly once")
	assert.Greater(t, workToken, childToken, "the work ran after the child's hold")
	require.NotEmpty(t, events, "a 1.5s install with a 0.5s grace is notified")
	maxEvents := int(math.Ceil(float64(crossHold)/float64(crossRate))) + 1
	assert.LessOrEqual(t, len(events), maxEvents)
	for i, e := range events {
		t.Logf("event %d: attempt %d, busy %v, holder pid %d %q", i, e.Attempt, e.Busy, e.Holder.PID, e.Holder.Purpose)
		assert.Equal(t, child.PID(), e.Holder.PID, "event %d", i)
		assert.Equal(t, "installing X", e.Holder.Purpose, "event %d", i)
		assert.Equal(t, childToken, e.Holder.Token, "event %d", i)
		assert.GreaterOrEqual(t, e.Busy, crossGrace, "event %d: never before the grace period", i)
		assert.True(t, e.Now.Before(workAt), "event %d: before the work", i)
		if i > 0 {
			prev := events[i-1]
			assert.Greater(t, e.Attempt, prev.Attempt)
			assert.GreaterOrEqual(t, e.Now.Sub(prev.Now), crossRate, "event %d: at most once per %v", i, crossRate)
		}
	}
	assert.Greater(t, looks, len(events), "the policy held some looks back")
}

func TestCrossProcessQueryingIsQuiet(t *testing.T) {
	dir := proctest.TempDir(t)
	child, _ := startHolder(t, dir, "querying", time.Second)
	c, err := lock.New(crossLock, lock.WithDir(dir))
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	looks, notified, works := 0, 0, 0
	policy := Purposes("installing*")
	p, err := New(c, func(context.Context, *lock.Lease) error { works++; cancel(); return nil },
		WithInterval(crossInterval), WithImmediateStart(),
		WithPolicy(PolicyFunc(func(e Event) bool {
			looks++
			assert.Equal(t, "querying", e.Holder.Purpose)
			return policy.Notify(e)
		})),
		OnBusy(func(Event) { notified++ }))
	require.NoError(t, err)

	require.ErrorIs(t, p.Run(ctx), context.Canceled)
	require.NoError(t, child.Wait(10*time.Second))
	t.Logf("%d busy looks", looks)
	assert.Positive(t, looks, "the poller saw the lock busy")
	assert.Zero(t, notified, "a query is never announced")
	assert.Equal(t, 1, works)
}

func TestCrossProcessAcquireNotify(t *testing.T) {
	dir := proctest.TempDir(t)
	child, childToken := startHolder(t, dir, "installing X", crossHold)
	c, err := lock.New(crossLock, lock.WithDir(dir))
	require.NoError(t, err)

	var events []Event
	l, err := AcquireNotify(context.Background(), c, All(After(crossGrace), RateLimit(crossRate)),
		func(e Event) { events = append(events, e) }, WithInterval(crossInterval))
	require.NoError(t, err)
	got := time.Now()
	defer l.Release()
	child.Expect("released", 10*time.Second)

	assert.Greater(t, l.Token(), childToken)
	require.NotEmpty(t, events)
	assert.LessOrEqual(t, len(events), int(math.Ceil(float64(crossHold)/float64(crossRate)))+1)
	for i, e := range events {
		assert.Equal(t, child.PID(), e.Holder.PID, "event %d", i)
		assert.Equal(t, "installing X", e.Holder.Purpose, "event %d", i)
		assert.GreaterOrEqual(t, e.Busy, crossGrace, "event %d", i)
		assert.True(t, e.Now.Before(got), "event %d", i)
	}
	require.NoError(t, l.Release())
	checkNoLeak(t)
}

func TestCrossProcessAcquireNotifyCancel(t *testing.T) {
	dir := proctest.TempDir(t)
	child, _ := startHolder(t, dir, "installing X", time.Minute)
	c, err := lock.New(crossLock, lock.WithDir(dir))
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	notified := 0
	l, err := AcquireNotify(ctx, c, Always(), func(Event) { notified++ }, WithInterval(crossInterval))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Nil(t, l)
	assert.Positive(t, notified)
	checkNoLeak(t)

	h, err := c.Holder(context.Background())
	require.NoError(t, err)
	assert.Equal(t, child.PID(), h.PID, "the child still holds the lock")
	child.Kill()
	<-child.Done()
	// The cancelled wait left no hold behind: the lock is free once the
	// child is gone.
	l2, err := c.TryAcquire(context.Background())
	require.NoError(t, err)
	require.NoError(t, l2.Release())
}

// A watch-only Poller never holds the lock: an installer in another
// process that takes and releases the lock 500 times while the poller
// looks every few milliseconds never finds it busy, and the poller
// still sees the installer's holds and reports the lock free between
// them.
func TestCrossProcessWatchOnlyNeverHolds(t *testing.T) {
	dir := proctest.TempDir(t)
	c, err := lock.New(crossLock, lock.WithDir(dir))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var busy, free, errs atomic.Int64
	var other atomic.Int64 // busy looks whose holder is not the child
	child := proctest.Start(t, roleTries, dir, "500")
	p, err := New(c, nil, WithInterval(2*time.Millisecond), WithImmediateStart(), WithPolicy(Always()),
		OnBusy(func(e Event) {
			busy.Add(1)
			if e.Holder.PID != child.PID() || e.Holder.Purpose != "installing X" {
				t.Logf("other holder: %+v", e.Holder)
				other.Add(1)
			}
		}),
		OnFree(func() { free.Add(1) }),
		OnError(func(err error) { errs.Add(1); t.Logf("look error: %v", err) }))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	line := child.Expect("tries ", time.Minute)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	require.NoError(t, child.Wait(10*time.Second))
	t.Logf("%s; poller: %d busy looks, %d free, %d errors", line, busy.Load(), free.Load(), errs.Load())
	assert.Equal(t, "tries 0", line, "the installer never found the lock busy")
	assert.Positive(t, busy.Load(), "the poller saw the installer's holds")
	assert.Positive(t, free.Load(), "the poller saw the lock free")
	assert.Zero(t, other.Load(), "every busy look named the installer")
	assert.Zero(t, errs.Load())
}

// The same installer next to a Poller with a work function (which takes
// the lock whenever it is free) does find the lock busy: the check
// above can fail.
func TestCrossProcessWorkingPollerContends(t *testing.T) {
	dir := proctest.TempDir(t)
	c, err := lock.New(crossLock, lock.WithDir(dir))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := New(c, func(context.Context, *lock.Lease) error { time.Sleep(time.Millisecond); return nil }, // work that holds the lock a while,
		WithInterval(2*time.Millisecond), WithImmediateStart())
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	child := proctest.Start(t, roleTries, dir, "500")
	line := child.Expect("tries ", time.Minute)
	cancel()
	<-done
	require.NoError(t, child.Wait(10*time.Second))
	t.Log(line)
	assert.NotEqual(t, "tries 0", line)
}

// After the holder is killed, a watch-only Poller sees the lock free
// but leaves the Abandoned flag to the program that takes the lock next.
func TestCrossProcessWatchOnlyLeavesAbandoned(t *testing.T) {
	dir := proctest.TempDir(t)
	child, _ := startHolder(t, dir, "installing X", time.Hour)
	c, err := lock.New(crossLock, lock.WithDir(dir))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var busy atomic.Int64
	frees := make(chan struct{}, 3)
	p, err := New(c, nil, WithInterval(5*time.Millisecond), WithImmediateStart(), WithPolicy(Always()),
		OnBusy(func(Event) { busy.Add(1) }),
		OnFree(func() {
			select {
			case frees <- struct{}{}:
			default:
			}
		}))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	require.Eventually(t, func() bool { return busy.Load() > 0 }, time.Minute, 5*time.Millisecond)
	child.Kill()
	<-child.Done()
	for i := range cap(frees) { // the first look at the free lock, and more
		select {
		case <-frees:
		case <-time.After(time.Minute):
			t.Fatalf("the poller saw the lock free %d times, want %d", i, cap(frees))
		}
	}
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)

	l, err := c.TryAcquire(context.Background())
	require.NoError(t, err)
	defer l.Release()
	assert.True(t, l.Abandoned(), "the next holder after the watching poller gets Abandoned")
}
