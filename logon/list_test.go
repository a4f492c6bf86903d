package logon

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentlock/agentlock/lock/locktest/proctest"
	"github.com/stretchr/testify/require"
)

func newTestList(t *testing.T, servers []Server, opts ...ListOption) (*List, *fakeClock) {
	t.Helper()
	l, err := NewList(servers, opts...)
	require.NoError(t, err)
	clock := newFakeClock()
	l.now = clock.Now
	return l, clock
}

func TestListFailover(t *testing.T) {
	var hits counter
	srv := httptest.NewServer(&hits)
	defer srv.Close()
	down := "http://" + refusedAddr(t) + "/health"

	l, _ := newTestList(t, []Server{
		{Name: down, Check: httpCheck(t, down)},
		{Name: srv.URL, Check: httpCheck(t, srv.URL)},
	})
	v := l.Validation()
	_, ok := v.Server()
	require.False(t, ok, "nothing validated before Check")

	require.NoError(t, v.Check(context.Background()))
	got, ok := v.Server()
	require.True(t, ok)
	require.Equal(t, srv.URL, got.Name, "the second server is the one validated")
	require.False(t, v.ValidatedAt().IsZero())
	require.EqualValues(t, 1, hits.n.Load())
}

func TestListFailoverSkipsBlackhole(t *testing.T) {
	hole := blockingServer(t)
	live := httptest.NewServer(&counter{})
	defer live.Close()
	l, _ := newTestList(t, []Server{
		{Name: "hole", Check: httpCheck(t, hole.URL)},
		{Name: "live", Check: httpCheck(t, live.URL)},
	}, WithCheckTimeout(200*time.Millisecond))
	v := l.Validation()
	start := time.Now()
	require.NoError(t, v.Check(context.Background()))
	t.Logf("failed over after %v", time.Since(start))
	require.Less(t, time.Since(start), promptly)
	srv, _ := v.Server()
	require.Equal(t, "live", srv.Name)
}

func TestListAllFailed(t *testing.T) {
	refused := refusedAddr(t)
	dir := proctest.TempDir(t)
	l, _ := newTestList(t, []Server{
		{Name: "logon1", Check: must(TCP(refused))},
		{Name: "logon2", Check: must(HTTP("http://logon2.invalid/health"))},
		{Name: "share", Check: must(Path(dir, WithMarker("INSTRUCTIONS.txt")))},
		{Name: "custom", Check: func(context.Context) error { return errors.New("maintenance window") }},
	})
	v := l.Validation()
	err := v.Check(context.Background())
	require.Error(t, err)
	t.Logf("error: %v", err)
	_, ok := v.Server()
	require.False(t, ok)

	var all *AllFailedError
	require.ErrorAs(t, err, &all)
	require.Len(t, all.Failures, 4)
	wantKinds := []Kind{KindRefused, KindDNS, KindNotFound, KindOther}
	for i, f := range all.Failures {
		var ce *CheckError
		require.ErrorAs(t, f.Err, &ce, "failure %d", i)
		require.Equal(t, wantKinds[i], ce.Kind, "failure %d: %v", i, f.Err)
	}
	require.Equal(t, "logon1", all.Failures[0].Name)
	require.Equal(t, "custom", all.Failures[3].Err.(*CheckError).Server, "a plain error gets the server's name")

	// errors.Is and errors.As reach every server's failure.
	for _, target := range []error{KindRefused, KindDNS, KindNotFound, KindOther} {
		require.ErrorIs(t, err, target)
	}
	require.NotErrorIs(t, err, KindTimeout)
	var ce *CheckError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, refused, ce.Server, "errors.As finds the first failure")

	msg := err.Error()
	require.Contains(t, msg, "all 4 logon servers failed")
	require.Contains(t, msg, "all 4 logon servers failed: logon server "+refused+": connection refused; ")
	require.NotContains(t, msg, "logon1", "each server is named once, by its check")
	require.Contains(t, msg, "custom: check failed: maintenance window")
}

func TestListFirstToAnswer(t *testing.T) {
	before := runtime.NumGoroutine()

	slowStarted := make(chan struct{})
	slowCanceled := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(slowStarted)
		select {
		case <-time.After(promptly): // healthy, eventually
			w.Write([]byte("ok"))
		case <-r.Context().Done():
			slowCanceled <- struct{}{}
		}
	}))
	// The fast server answers once the slow one is busy with its
	// request, so that there is a request in flight to cancel.
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-slowStarted:
		case <-time.After(promptly):
		}
		w.Write([]byte("ok"))
	}))
	client := &http.Client{Transport: &http.Transport{}}

	l, _ := newTestList(t, []Server{
		{Name: "slow", Check: httpCheck(t, slow.URL, WithClient(client))},
		{Name: "fast", Check: httpCheck(t, fast.URL, WithClient(client))},
	}, WithStrategy(FirstToAnswer))
	v := l.Validation()
	start := time.Now()
	require.NoError(t, v.Check(context.Background()))
	require.Less(t, time.Since(start), promptly, "the fast server must win without waiting for the slow one")
	srv, ok := v.Server()
	require.True(t, ok)
	require.Equal(t, "fast", srv.Name)

	select {
	case <-slowCanceled:
		t.Log("the losing request was canceled")
	case <-time.After(promptly):
		t.Fatal("the losing request was not canceled")
	}

	client.CloseIdleConnections()
	slow.Close()
	fast.Close()
	requireGoroutinesSettle(t, before)
}

func TestListFirstToAnswerAllFail(t *testing.T) {
	l, _ := newTestList(t, []Server{
		{Name: "a", Check: must(TCP(refusedAddr(t)))},
		{Name: "b", Check: must(TCP("b.invalid:445"))},
	}, WithStrategy(FirstToAnswer))
	err := l.Check(context.Background())
	var all *AllFailedError
	require.ErrorAs(t, err, &all)
	require.Equal(t, "a", all.Failures[0].Name, "failures are in list order")
	require.Equal(t, "b", all.Failures[1].Name)
	require.ErrorIs(t, err, KindRefused)
	require.ErrorIs(t, err, KindDNS)
}

func TestListDeadlineMarksUntried(t *testing.T) {
	hole := blockingServer(t)
	l, _ := newTestList(t, []Server{
		{Name: "hole", Check: httpCheck(t, hole.URL, WithTimeout(0))},
		{Name: "never", Check: must(TCP(liveTCP(t)))},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := l.Check(ctx)
	require.Error(t, err)
	t.Logf("error: %v", err)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestListCache(t *testing.T) {
	var hits counter
	srv := httptest.NewServer(&hits)
	defer srv.Close()
	l, clock := newTestList(t, []Server{{Name: "s", Check: httpCheck(t, srv.URL)}},
		WithSuccessTTL(time.Minute))
	ctx := context.Background()

	first := l.Validation()
	require.NoError(t, first.Check(ctx))
	at := first.ValidatedAt()
	for range 10 {
		clock.Advance(5 * time.Second)
		v := l.Validation()
		require.NoError(t, v.Check(ctx))
		require.Equal(t, at, v.ValidatedAt(), "a cached result reports when it was probed")
	}
	require.EqualValues(t, 1, hits.n.Load(), "calls within the TTL share one probe")

	clock.Advance(11 * time.Second) // 61 s after the probe
	require.NoError(t, l.Check(ctx))
	require.EqualValues(t, 2, hits.n.Load(), "a call after the TTL probes again")
}

func TestListCacheFailure(t *testing.T) {
	var probes atomic.Int64
	healthy := atomic.Bool{}
	check := funcCheck(t, "flaky", func(context.Context) error {
		probes.Add(1)
		if healthy.Load() {
			return nil
		}
		return errors.New("down")
	})
	l, clock := newTestList(t, []Server{{Name: "flaky", Check: check}},
		WithSuccessTTL(time.Hour), WithFailureTTL(3*time.Second))
	ctx := context.Background()

	for range 5 {
		require.Error(t, l.Check(ctx))
		clock.Advance(500 * time.Millisecond)
	}
	require.EqualValues(t, 1, probes.Load(), "a failure is cached for the failure TTL")

	healthy.Store(true)
	clock.Advance(time.Second) // 3.5 s after the failed probe
	require.NoError(t, l.Check(ctx))
	require.EqualValues(t, 2, probes.Load())

	healthy.Store(false)
	clock.Advance(30 * time.Minute)
	require.NoError(t, l.Check(ctx), "a success is cached for the success TTL, not the failure TTL")
	require.EqualValues(t, 2, probes.Load())
}

func TestListCacheDisabled(t *testing.T) {
	var hits counter
	srv := httptest.NewServer(&hits)
	defer srv.Close()
	l, _ := newTestList(t, []Server{{Name: "s", Check: httpCheck(t, srv.URL)}},
		WithSuccessTTL(0))
	for range 3 {
		require.NoError(t, l.Check(context.Background()))
	}
	require.EqualValues(t, 3, hits.n.Load())
}

func TestListSharedProbe(t *testing.T) {
	var hits counter
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		hits.ServeHTTP(w, r)
	}))
	defer srv.Close()
	l, _ := newTestList(t, []Server{{Name: "s", Check: httpCheck(t, srv.URL, WithTimeout(0))}})

	const callers = 10
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() { errs <- l.Validation().Check(context.Background()) })
	}
	// Wait until every caller waits on the same probe, then let it answer.
	require.Eventually(t, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.call != nil && l.call.waiters == callers
	}, promptly, time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, 1, hits.n.Load(), "concurrent callers share one probe")
}

func TestListCancelNotCached(t *testing.T) {
	var probes atomic.Int64
	started := make(chan struct{}, 2)
	check := funcCheck(t, "slow", func(ctx context.Context) error {
		probes.Add(1)
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}, WithTimeout(0))
	l, _ := newTestList(t, []Server{{Name: "slow", Check: check}})

	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }() // give up once the probe runs
	err := l.Check(ctx)
	require.ErrorIs(t, err, context.Canceled)
	t.Logf("error: %v", err)
	requireGoroutinesSettle(t, before) // the abandoned probe was stopped

	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, l.Check(ctx), context.DeadlineExceeded)
	require.EqualValues(t, 2, probes.Load(), "a canceled probe is not cached")
}

func TestListWaiterLeavesProbeContinues(t *testing.T) {
	release := make(chan struct{})
	var probes atomic.Int64
	check := funcCheck(t, "s", func(ctx context.Context) error {
		probes.Add(1)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, WithTimeout(0))
	l, _ := newTestList(t, []Server{{Name: "s", Check: check}})

	// The caller that started the probe gives up; a second caller still
	// waits, so the probe must go on and answer it.
	ctx1, cancel1 := context.WithCancel(context.Background())
	done1 := make(chan error, 1)
	go func() { done1 <- l.Check(ctx1) }()
	require.Eventually(t, func() bool { return probes.Load() == 1 }, promptly, time.Millisecond)
	done2 := make(chan error, 1)
	go func() { done2 <- l.Check(context.Background()) }()
	require.Eventually(t, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.call != nil && l.call.waiters == 2
	}, promptly, time.Millisecond)
	cancel1()
	require.ErrorIs(t, <-done1, context.Canceled)
	close(release)
	require.NoError(t, <-done2)
	require.EqualValues(t, 1, probes.Load())
}

func TestValidationsAreIndependent(t *testing.T) {
	var up atomic.Bool
	up.Store(true)
	l, _ := newTestList(t, []Server{
		{Name: "a", Check: func(context.Context) error {
			if up.Load() {
				return nil
			}
			return errors.New("down")
		}},
		{Name: "b", Check: func(context.Context) error { return nil }},
	}, WithSuccessTTL(0), WithFailureTTL(0))
	va, vb := l.Validation(), l.Validation()
	require.NoError(t, va.Check(context.Background()))
	up.Store(false)
	require.NoError(t, vb.Check(context.Background()))
	sa, _ := va.Server()
	sb, _ := vb.Server()
	require.Equal(t, "a", sa.Name)
	require.Equal(t, "b", sb.Name)
}

// must panics when a constructor returned an error.
func must(c Check, err error) Check {
	if err != nil {
		panic(err)
	}
	return c
}
