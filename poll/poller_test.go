package poll

import (
	"context"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/internal/snippet"
	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

// fakePoller returns a Poller on b with no jitter unless opts set it.
// Tests that let time pass run in a synctest bubble, where time moves
// only when every goroutine of the bubble is blocked, so a poller's
// timers fire at exact, repeatable moments.
func fakePoller(t *testing.T, b *fakeBackend, work func(context.Context, *lock.Lease) error, opts ...PollerOption) *Poller {
	t.Helper()
	c, err := lock.New("poll-fake", lock.WithBackend(b))
	require.NoError(t, err)
	if work == nil {
		work = func(context.Context, *lock.Lease) error { return nil }
	}
	p, err := New(c, work, append([]PollerOption{WithJitter(0)}, opts...)...)
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

// gaps returns the time between consecutive times.
func gaps(times []time.Time) []time.Duration {
	var d []time.Duration
	for i := 1; i < len(times); i++ {
		d = append(d, times[i].Sub(times[i-1]))
	}
	return d
}

func TestPollerBusyEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		b := &fakeBackend{}
		b.set(&lock.Holder{PID: 42, Host: "h", Purpose: "installing X", Since: t0, Token: 9}, nil)
		var events []Event
		works := 0
		p := fakePoller(t, b, func(context.Context, *lock.Lease) error { works++; return nil },
			WithInterval(100*time.Millisecond), WithImmediateStart(),
			WithPolicy(All(After(250*time.Millisecond), RateLimit(300*time.Millisecond))),
			OnBusy(func(e Event) { events = append(events, e) }))
		stop := start(t, p)
		time.Sleep(950 * time.Millisecond) // cycles at 0 (immediate start), 100ms, ..., 900ms
		require.ErrorIs(t, stop(), context.Canceled)

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
	})
}

func TestPollerWorkWhenFreeThenNewBusyRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		b := &fakeBackend{}
		b.set(&lock.Holder{PID: 42, Host: localHost(), Purpose: "installing X", Since: t0, Token: 9}, nil)
		var events []Event
		var leases []*lock.Lease
		p := fakePoller(t, b, func(ctx context.Context, l *lock.Lease) error {
			leases = append(leases, l)
			return nil
		}, WithInterval(time.Second), WithPolicy(Always()), OnBusy(func(e Event) { events = append(events, e) }),
			WithLockOptions(lock.WithPurpose("querying")))
		stop := start(t, p)

		time.Sleep(2500 * time.Millisecond) // busy cycles at 1s (not at once) and 2s
		b.set(nil, nil)
		time.Sleep(time.Second) // free at 3s: work
		b.set(&lock.Holder{PID: 43, Host: localHost(), Purpose: "installing Y", Since: t0.Add(3*time.Second - time.Hour), Token: 10}, nil)
		time.Sleep(time.Second) // busy again at 4s: a new run
		require.ErrorIs(t, stop(), context.Canceled)

		require.Len(t, leases, 1)
		assert.Equal(t, "querying", leases[0].Holder().Purpose, "WithLockOptions reach TryAcquire")
		_, grants, released := b.counts()
		assert.Equal(t, 1, grants)
		assert.Equal(t, 1, released, "the lease is released after the work")

		require.Len(t, events, 3)
		assert.Equal(t, t0.Add(time.Second), events[0].Now, "first cycle after one interval")
		assert.Equal(t, []int{1, 2, 1}, []int{events[0].Attempt, events[1].Attempt, events[2].Attempt})
		assert.Equal(t, 2*time.Second, events[1].Busy, "busy since the holder's Since, before Run started")
		assert.Equal(t, 43, events[2].Holder.PID)
		assert.Equal(t, time.Hour+time.Second, events[2].Busy, "the holder's Since counts when it is earlier")
	})
}

func TestPollerBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &fakeBackend{}
		errIO := errors.New("disk on fire")
		b.set(nil, errIO)
		var errs []error
		p := fakePoller(t, b, nil, WithInterval(100*time.Millisecond), WithImmediateStart(),
			WithBackoff(100*time.Millisecond, time.Second), OnError(func(err error) { errs = append(errs, err) }))
		stop := start(t, p)

		time.Sleep(2600 * time.Millisecond) // errors at 0, 100ms, 300ms, 700ms, 1.5s, 2.5s
		b.set(&lock.Holder{PID: 1}, nil)    // busy: no longer an error
		time.Sleep(1050 * time.Millisecond) // busy at 3.5s and 3.6s
		require.ErrorIs(t, stop(), context.Canceled)

		ms := time.Millisecond
		assert.Equal(t, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second, 100 * ms}, gaps(b.times()))
		require.Len(t, errs, 6)
		for _, err := range errs {
			assert.ErrorIs(t, err, errIO)
		}
	})
}

func TestJitterAndBackoffBounds(t *testing.T) {
	cfg, err := newConfig([]PollerOption{WithInterval(time.Second), WithJitter(0.2), WithBackoff(time.Second, 4*time.Second)})
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
	cfg, err = newConfig([]PollerOption{WithJitter(0.5)})
	require.NoError(t, err)
	for range 1000 {
		d := cfg.jittered(time.Second)
		require.True(t, d >= 500*time.Millisecond && d <= 1500*time.Millisecond, "%v", d)
	}

	cfg, err = newConfig([]PollerOption{WithInterval(2 * time.Minute)})
	require.NoError(t, err)
	assert.Equal(t, 2*time.Minute, cfg.backoffBase)
	assert.Equal(t, 2*time.Minute, cfg.backoffMax, "default max is at least the base")
}

func TestPollerTrigger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &fakeBackend{}
		b.set(&lock.Holder{PID: 1}, nil)
		p := fakePoller(t, b, nil, WithInterval(time.Hour))
		p.Trigger()
		p.Trigger()
		p.Trigger() // coalesced, and kept until Run starts
		stop := start(t, p)
		synctest.Wait()
		tries, _, _ := b.counts()
		assert.Equal(t, 1, tries, "three triggers, one cycle")

		time.Sleep(30 * time.Minute) // the bubble's clock: half of the interval
		p.Trigger()
		synctest.Wait()
		tries, _, _ = b.counts()
		assert.Equal(t, 2, tries)
		time.Sleep(59 * time.Minute) // past the hour of the first timer
		synctest.Wait()
		tries, _, _ = b.counts()
		assert.Equal(t, 2, tries, "the triggered cycle resets the timer")
		time.Sleep(2 * time.Minute) // past the hour of the second timer
		require.ErrorIs(t, stop(), context.Canceled)
		assert.Equal(t, []time.Duration{30 * time.Minute, time.Hour}, gaps(b.times()), "no cycle without a trigger or the timer")
	})
}

func TestPollerWorkPanicReleasesAndPropagates(t *testing.T) {
	b := &fakeBackend{}
	p := fakePoller(t, b, func(context.Context, *lock.Lease) error { panic("boom") }, WithImmediateStart())

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
	synctest.Test(t, func(t *testing.T) {
		b := &fakeBackend{}
		errWork := errors.New("bad instructions")
		calls := 0
		var errs []error
		p := fakePoller(t, b, func(_ context.Context, l *lock.Lease) error {
			calls++
			if calls == 1 {
				return errWork
			}
			return l.Release() // released by the work itself: not an error
		}, WithInterval(time.Second), WithImmediateStart(), OnError(func(err error) { errs = append(errs, err) }))
		stop := start(t, p)
		time.Sleep(1500 * time.Millisecond) // cycles at 0 and 1s
		require.ErrorIs(t, stop(), context.Canceled)

		assert.Equal(t, []time.Duration{time.Second}, gaps(b.times()), "a work error is no reason to back off")
		_, grants, released := b.counts()
		assert.Equal(t, 2, grants)
		assert.Equal(t, 2, released)
		require.Len(t, errs, 1)
		assert.ErrorIs(t, errs[0], errWork)
	})
}

func TestPollerStopsOnBadLockOption(t *testing.T) {
	p := fakePoller(t, &fakeBackend{}, nil, WithImmediateStart(),
		WithLockOptions(lock.WithDir(proctest.TempDir(t)))) // not a per-acquisition option
	err := p.Run(context.Background())
	assert.ErrorIs(t, err, lock.ErrInvalidOption)
}

func TestPollerRunTwicePanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := fakePoller(t, &fakeBackend{}, nil)
		start(t, p)
		synctest.Wait() // Run waits on its timer
		assert.PanicsWithValue(t, "poll: Run called while the Poller is running", func() { p.Run(context.Background()) })
	})
}

func TestNewRejectsBadOptions(t *testing.T) {
	c, err := lock.New("poll-opts", lock.WithBackend(&fakeBackend{}))
	require.NoError(t, err)
	work := func(context.Context, *lock.Lease) error { return nil }
	tests := []struct {
		name string
		opt  PollerOption
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
		{"nil PollerOption", nil},
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
	_, err = New(c, nil, WithLockOptions(lock.WithPurpose("x")))
	assert.ErrorIs(t, err, ErrInvalidOption, "a watch-only Poller has no acquisition for lock options")
	_, err = New(c, nil, OnFree(nil))
	assert.ErrorIs(t, err, ErrInvalidOption)

	_, err = AcquireNotify(context.Background(), c, Always(), func(Event) {}, Option{})
	assert.ErrorIs(t, err, ErrInvalidOption)
	_, err = AcquireNotify(context.Background(), c, nil, func(Event) {})
	assert.ErrorIs(t, err, ErrInvalidOption)
}

// TestPollerOnlyOptionsDoNotCompileWithAcquireNotify: an option that only
// a Poller has, given to AcquireNotify, is a compile error naming it.
func TestPollerOnlyOptionsDoNotCompileWithAcquireNotify(t *testing.T) {
	imports := []string{"context", "github.com/agentlock/agentlock/lock", "github.com/agentlock/agentlock/poll"}
	build := func(opt string) (string, error) {
		return snippet.Build(t, imports,
			`_, _ = poll.AcquireNotify(context.Background(), (*lock.Coordinator)(nil), poll.Always(), func(poll.Event) {}, `+opt+`)`)
	}
	for _, opt := range []string{"poll.WithImmediateStart()", "poll.WithBackoff(1, 2)", "poll.WithPolicy(nil)",
		"poll.OnBusy(nil)", "poll.OnError(nil)", "poll.OnFree(nil)"} {
		out, err := build(opt)
		require.Error(t, err, "%s compiled", opt)
		require.Contains(t, out, opt[len("poll."):], "the compiler names the option")
	}
	out, err := build("poll.WithInterval(1), poll.WithJitter(0), poll.WithLockOptions()")
	require.NoError(t, err, "%s", out)
}

func TestAcquireNotifyLooksOncePerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &fakeBackend{}
		b.set(&lock.Holder{PID: 42, Host: localHost(), Purpose: "installing X", Since: time.Now(), Token: 9}, nil)
		c, err := lock.New("poll-fake", lock.WithBackend(b))
		require.NoError(t, err)
		var got []Event
		go func() {
			time.Sleep(250 * time.Millisecond) // looks at 0, 100ms and 200ms
			b.set(nil, nil)
		}()
		l, err := AcquireNotify(context.Background(), c, Always(), func(e Event) { got = append(got, e) },
			WithInterval(100*time.Millisecond), WithJitter(0))
		require.NoError(t, err)
		require.NoError(t, l.Release())

		require.Len(t, got, 3)
		for i, e := range got {
			assert.Equal(t, i+1, e.Attempt)
			assert.Equal(t, time.Duration(i)*100*time.Millisecond, e.Busy)
			assert.Equal(t, e.Now.Add(100*time.Millisecond), e.Next)
			assert.Equal(t, 42, e.Holder.PID)
		}
	})
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
		time.Sleep(10 * time.Millisecond) // a goroutine's end has no event to wait on
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
	synctest.Test(t, func(t *testing.T) {
		b := &fakeBackend{}
		b.set(&lock.Holder{PID: 42, Host: localHost(), Purpose: "installing X", Since: time.Now(), Token: 9}, nil)
		var nows []time.Time
		p := fakePoller(t, b, nil, WithInterval(time.Second), WithJitter(0), WithPolicy(Always()),
			OnBusy(func(e Event) {
				nows = append(nows, e.Now)
				if len(nows) == 1 {
					time.Sleep(10 * time.Second) // the user takes 10 s to dismiss it
				}
			}))
		stop := start(t, p)
		time.Sleep(12500 * time.Millisecond) // looks at 1s and, 1s after the callback, 12s
		require.ErrorIs(t, stop(), context.Canceled)
		require.Len(t, nows, 2)
		assert.Equal(t, 11*time.Second, nows[1].Sub(nows[0]))
	})
}
