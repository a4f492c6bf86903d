package poll

import (
	"context"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/locktest/proctest"
)

// fakePoller returns a Poller on b, driven by clk, with no jitter
// unless opts set it.
func fakePoller(t *testing.T, b *fakeBackend, clk *fakeClock, work func(context.Context, *lock.Lease) error, opts ...Option) *Poller {
	t.Helper()
	c, err := lock.New("poll-fake", lock.WithBackend(b))
	require.NoError(t, err)
	if work == nil {
		work = func(context.Context, *lock.Lease) error { return nil }
	}
	opts = append([]Option{WithJitter(0), withClock(clk, func() float64 { return 0.5 })}, opts...)
	p, err := New(c, work, opts...)
	require.NoError(t, err)
	return p
}

// start runs p in a goroutine; stop cancels it and returns Run's error.
func start(t *testing.T, p *Poller) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	stopped := false
	var err error
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			err = <-errc
		}
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func TestPollerBusyEvents(t *testing.T) {
	clk := newFakeClock()
	b := &fakeBackend{}
	b.set(&lock.Holder{PID: 42, Host: "h", Purpose: "installing X", Since: clk.Now(), Token: 9}, nil)
	var events []Event
	works := 0
	p := fakePoller(t, b, clk, func(context.Context, *lock.Lease) error { works++; return nil },
		WithInterval(100*time.Millisecond), WithImmediateStart(),
		WithPolicy(All(After(250*time.Millisecond), RateLimit(300*time.Millisecond))),
		OnBusy(func(e Event) { events = append(events, e) }))
	stop := start(t, p)

	require.Equal(t, time.Duration(0), clk.waitSet(t), "immediate start")
	for range 9 { // cycles at 0, 100ms, ..., 900ms
		require.Equal(t, 100*time.Millisecond, clk.step(t))
	}
	require.Equal(t, 100*time.Millisecond, clk.waitSet(t))
	require.ErrorIs(t, stop(), context.Canceled)

	t0 := clk.Now().Add(-900 * time.Millisecond)
	require.Len(t, events, 3, "after 250ms, then once per 300ms")
	for i, e := range events {
		at := time.Duration(300*(i+1)) * time.Millisecond
		assert.Equal(t, 3*(i+1)+1, e.Attempt, "event %d", i)
		assert.Equal(t, at, e.Busy, "event %d", i)
		assert.Equal(t, t0, e.Since)
		assert.Equal(t, t0.Add(at), e.Now)
		assert.Equal(t, e.Now.Add(100*time.Millisecond), e.Next)
		assert.Equal(t, 42, e.Holder.PID)
		assert.Equal(t, "installing X", e.Holder.Purpose)
		assert.Equal(t, "poll-fake", e.Lock)
	}
	assert.Zero(t, works)
	tries, grants, _ := b.counts()
	assert.Equal(t, 10, tries)
	assert.Zero(t, grants)
}

func TestPollerWorkWhenFreeThenNewBusyRun(t *testing.T) {
	clk := newFakeClock()
	b := &fakeBackend{}
	b.set(&lock.Holder{PID: 42, Host: localHost(), Purpose: "installing X", Since: clk.Now(), Token: 9}, nil)
	var events []Event
	var leases []*lock.Lease
	p := fakePoller(t, b, clk, func(ctx context.Context, l *lock.Lease) error {
		leases = append(leases, l)
		return nil
	}, WithInterval(time.Second), WithPolicy(Always()), OnBusy(func(e Event) { events = append(events, e) }),
		WithLockOptions(lock.WithPurpose("querying")))
	stop := start(t, p)

	require.Equal(t, time.Second, clk.step(t), "first cycle after one interval")
	clk.step(t) // the second busy cycle
	clk.waitSet(t)
	b.set(nil, nil)
	clk.Advance(time.Second) // free: work
	clk.waitSet(t)
	b.set(&lock.Holder{PID: 43, Host: localHost(), Purpose: "installing Y", Since: clk.Now().Add(-time.Hour), Token: 10}, nil)
	clk.Advance(time.Second) // busy again: a new run
	clk.waitSet(t)
	require.ErrorIs(t, stop(), context.Canceled)

	require.Len(t, leases, 1)
	assert.Equal(t, "querying", leases[0].Holder().Purpose, "WithLockOptions reach TryAcquire")
	_, grants, released := b.counts()
	assert.Equal(t, 1, grants)
	assert.Equal(t, 1, released, "the lease is released after the work")

	require.Len(t, events, 3)
	assert.Equal(t, []int{1, 2, 1}, []int{events[0].Attempt, events[1].Attempt, events[2].Attempt})
	assert.Equal(t, 2*time.Second, events[1].Busy, "busy since the holder's Since, before Run started")
	assert.Equal(t, 43, events[2].Holder.PID)
	assert.Equal(t, time.Hour+time.Second, events[2].Busy, "the holder's Since counts when it is earlier")
}

func TestPollerBackoff(t *testing.T) {
	clk := newFakeClock()
	b := &fakeBackend{}
	errIO := errors.New("disk on fire")
	b.set(nil, errIO)
	var errs []error
	p := fakePoller(t, b, clk, nil, WithInterval(100*time.Millisecond), WithImmediateStart(),
		WithBackoff(100*time.Millisecond, time.Second), OnError(func(err error) { errs = append(errs, err) }))
	start(t, p)

	clk.waitSet(t)
	var got []time.Duration
	for range 6 {
		got = append(got, clk.waitSet(t))
		if len(got) == 6 {
			b.set(&lock.Holder{PID: 1}, nil) // busy: no longer an error
		}
		clk.Advance(got[len(got)-1])
	}
	got = append(got, clk.waitSet(t))
	ms := time.Millisecond
	assert.Equal(t, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second, 100 * ms}, got)
	require.Len(t, errs, 6)
	for _, err := range errs {
		assert.ErrorIs(t, err, errIO)
	}
}

func TestJitterAndBackoffBounds(t *testing.T) {
	cfg, err := newConfig([]Option{WithInterval(time.Second), WithJitter(0.2), WithBackoff(time.Second, 4*time.Second)}, true)
	require.NoError(t, err)
	for _, tt := range []struct {
		r    float64
		want time.Duration
	}{{0, 800 * time.Millisecond}, {0.5, time.Second}, {0.75, 1100 * time.Millisecond}} {
		cfg.rnd = func() float64 { return tt.r }
		assert.Equal(t, tt.want, cfg.jittered(time.Second), "r=%v", tt.r)
	}
	cfg.rnd = func() float64 { return 0.5 }
	for n, want := range []time.Duration{1, 1, 2, 4, 4, 4} {
		if n > 0 {
			assert.Equal(t, want*time.Second, cfg.backoff(n), "error %d", n)
		}
	}
	assert.Equal(t, 4*time.Second, cfg.backoff(math.MaxInt32), "no overflow")

	// Real randomness stays within the bounds.
	cfg, err = newConfig([]Option{WithJitter(0.5)}, true)
	require.NoError(t, err)
	for range 1000 {
		d := cfg.jittered(time.Second)
		require.True(t, d >= 500*time.Millisecond && d <= 1500*time.Millisecond, "%v", d)
	}

	cfg, err = newConfig([]Option{WithInterval(2 * time.Minute)}, true)
	require.NoError(t, err)
	assert.Equal(t, 2*time.Minute, cfg.backoffBase)
	assert.Equal(t, 2*time.Minute, cfg.backoffMax, "default max is at least the base")
}

func TestPollerTrigger(t *testing.T) {
	clk := newFakeClock()
	b := &fakeBackend{}
	b.set(&lock.Holder{PID: 1}, nil)
	p := fakePoller(t, b, clk, nil, WithInterval(time.Hour))
	p.Trigger()
	p.Trigger()
	p.Trigger() // coalesced, and kept until Run starts
	start(t, p)

	require.Equal(t, time.Hour, clk.waitSet(t))
	require.Equal(t, time.Hour, clk.waitSet(t), "the triggered cycle resets the timer")
	tries, _, _ := b.counts()
	assert.Equal(t, 1, tries, "three triggers, one cycle")

	p.Trigger()
	clk.waitSet(t)
	time.Sleep(50 * time.Millisecond) // room for a wrong extra cycle
	tries, _, _ = b.counts()
	assert.Equal(t, 2, tries)
	assert.Empty(t, clk.sets, "no cycle without a trigger or the timer")
}

func TestPollerWorkPanicReleasesAndPropagates(t *testing.T) {
	clk := newFakeClock()
	b := &fakeBackend{}
	p := fakePoller(t, b, clk, func(context.Context, *lock.Lease) error { panic("boom") }, WithImmediateStart())

	var recovered any
	func() {
		defer func() { recovered = recover() }()
		p.Run(context.Background())
	}()
	assert.Equal(t, "boom", recovered)
	_, grants, released := b.counts()
	assert.Equal(t, 1, grants)
	assert.Equal(t, 1, released, "released before the panic went on")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, p.Run(ctx), context.Canceled, "Run can run again after a panic")
}

func TestPollerWorkErrorAndEarlyRelease(t *testing.T) {
	clk := newFakeClock()
	b := &fakeBackend{}
	errWork := errors.New("bad instructions")
	calls := 0
	var errs []error
	p := fakePoller(t, b, clk, func(_ context.Context, l *lock.Lease) error {
		calls++
		if calls == 1 {
			return errWork
		}
		return l.Release() // released by the work itself: not an error
	}, WithInterval(time.Second), WithImmediateStart(), OnError(func(err error) { errs = append(errs, err) }))
	start(t, p)

	clk.waitSet(t)
	assert.Equal(t, time.Second, clk.step(t), "a work error is no reason to back off")
	clk.waitSet(t)
	_, grants, released := b.counts()
	assert.Equal(t, 2, grants)
	assert.Equal(t, 2, released)
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], errWork)
}

func TestPollerStopsOnBadLockOption(t *testing.T) {
	p := fakePoller(t, &fakeBackend{}, newFakeClock(), nil, WithImmediateStart(),
		WithLockOptions(lock.WithDir(proctest.TempDir(t)))) // not a per-acquisition option
	err := p.Run(context.Background())
	assert.ErrorIs(t, err, lock.ErrInvalidOption)
}

func TestPollerRunTwicePanics(t *testing.T) {
	clk := newFakeClock()
	p := fakePoller(t, &fakeBackend{}, clk, nil)
	start(t, p)
	clk.waitSet(t)
	assert.PanicsWithValue(t, "poll: Run called while the Poller is running", func() { p.Run(context.Background()) })
}

func TestNewRejectsBadOptions(t *testing.T) {
	c, err := lock.New("poll-opts", lock.WithBackend(&fakeBackend{}))
	require.NoError(t, err)
	work := func(context.Context, *lock.Lease) error { return nil }
	tests := []struct {
		name string
		opt  Option
	}{
		{"zero interval", WithInterval(0)},
		{"negative interval", WithInterval(-time.Second)},
		{"jitter 1", WithJitter(1)},
		{"negative jitter", WithJitter(-0.1)},
		{"NaN jitter", WithJitter(math.NaN())},
		{"zero backoff", WithBackoff(0, time.Second)},
		{"backoff max below base", WithBackoff(2*time.Second, time.Second)},
		{"nil policy", WithPolicy(nil)},
		{"nil OnBusy", OnBusy(nil)},
		{"nil OnError", OnError(nil)},
		{"zero Option", Option{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(c, work, tt.opt)
			assert.Nil(t, p)
			assert.ErrorIs(t, err, ErrInvalidOption)
		})
	}
	_, err = New(nil, work)
	assert.ErrorIs(t, err, ErrInvalidOption)
	_, err = New(c, nil)
	assert.ErrorIs(t, err, ErrInvalidOption)

	_, err = AcquireNotify(context.Background(), c, Always(), func(Event) {}, WithImmediateStart())
	assert.ErrorIs(t, err, ErrInvalidOption)
	assert.Contains(t, err.Error(), "WithImmediateStart applies to New")
	_, err = AcquireNotify(context.Background(), c, nil, func(Event) {})
	assert.ErrorIs(t, err, ErrInvalidOption)
}

func TestAcquireNotifyFakeClock(t *testing.T) {
	clk := newFakeClock()
	b := &fakeBackend{}
	b.set(&lock.Holder{PID: 42, Host: localHost(), Purpose: "installing X", Since: clk.Now(), Token: 9}, nil)
	c, err := lock.New("poll-fake", lock.WithBackend(b))
	require.NoError(t, err)
	events := make(chan Event, 10)
	type result struct {
		l   *lock.Lease
		err error
	}
	done := make(chan result, 1)
	go func() {
		l, err := AcquireNotify(context.Background(), c, Always(), func(e Event) { events <- e },
			WithInterval(100*time.Millisecond), WithJitter(0), withClock(clk, nil))
		done <- result{l, err}
	}()
	require.Equal(t, 100*time.Millisecond, clk.waitSet(t))
	clk.Advance(100 * time.Millisecond)
	clk.step(t)
	clk.waitSet(t)
	b.set(nil, nil)
	r := <-done
	require.NoError(t, r.err)
	require.NoError(t, r.l.Release())

	close(events)
	var got []Event
	for e := range events {
		got = append(got, e)
	}
	require.Len(t, got, 3)
	for i, e := range got {
		assert.Equal(t, i+1, e.Attempt)
		assert.Equal(t, time.Duration(i)*100*time.Millisecond, e.Busy)
		assert.Equal(t, e.Now.Add(100*time.Millisecond), e.Next)
		assert.Equal(t, 42, e.Holder.PID)
	}
}

func TestAcquireNotifyFree(t *testing.T) {
	c, err := lock.New("poll-free", lock.WithDir(proctest.TempDir(t)))
	require.NoError(t, err)
	l, err := AcquireNotify(context.Background(), c, Always(), func(Event) { t.Error("notified about a free lock") })
	require.NoError(t, err)
	require.NoError(t, l.Release())
}

// checkNoLeak waits up to 2s for every goroutine running code of this
// package or of package lock to end, and fails the test otherwise.
func checkNoLeak(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for i, g := range strings.Split(string(buf), "\n\n") {
			if i == 0 {
				continue // this goroutine
			}
			if strings.Contains(g, "agentlock/lock.readNotify") || strings.Contains(g, "agentlock/lock.readKwatch") {
				continue // package lock's one watch per process, kept for its life
			}
			if strings.Contains(g, "agentlock/poll.(*Poller)") || strings.Contains(g, "agentlock/poll.AcquireNotify") ||
				strings.Contains(g, "agentlock/lock.") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d goroutines left behind:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPollerCancelStopsWithinIntervalNoLeak(t *testing.T) {
	c, err := lock.New("poll-cancel", lock.WithDir(proctest.TempDir(t)))
	require.NoError(t, err)
	const interval = time.Second
	cycles := make(chan struct{}, 100)
	p, err := New(c, func(context.Context, *lock.Lease) error { cycles <- struct{}{}; return nil },
		WithInterval(interval), WithImmediateStart())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	<-cycles // the first cycle ran; Run now waits on its timer

	cancel()
	cancelled := time.Now()
	select {
	case err := <-errc:
		t.Logf("Run returned %v after cancel", time.Since(cancelled))
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(interval):
		t.Fatal("Run did not stop within one interval")
	}
	checkNoLeak(t)
}

// TestPollerWaitsAfterSlowCallback: the next look comes one interval
// after OnBusy returns, not one interval after the look began: a
// notification the user takes 10 s to dismiss is not followed by the
// next at once.
func TestPollerWaitsAfterSlowCallback(t *testing.T) {
	clk := newFakeClock()
	b := &fakeBackend{}
	b.set(&lock.Holder{PID: 42, Host: localHost(), Purpose: "installing X", Since: clk.Now(), Token: 9}, nil)
	var nows []time.Time
	p := fakePoller(t, b, clk, nil, WithInterval(time.Second), WithJitter(0), WithPolicy(Always()),
		OnBusy(func(e Event) {
			nows = append(nows, e.Now)
			if len(nows) == 1 {
				clk.Advance(10 * time.Second) // the user takes 10 s to dismiss it
			}
		}))
	stop := start(t, p)
	clk.step(t) // first look; its callback takes 10 s
	clk.step(t) // the wait after it
	clk.waitSet(t)
	require.ErrorIs(t, stop(), context.Canceled)
	require.Len(t, nows, 2)
	assert.Equal(t, 11*time.Second, nows[1].Sub(nows[0]))
}
