package logon

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// generous bounds for "it returned promptly": these machines are noisy, so
// tests assert that a call ended, never how fast.
const promptly = 5 * time.Second

// refusedAddr returns a loopback address nothing listens on: it listens on
// a free port and closes the listener again.
func refusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// liveTCP returns the address of a listener that accepts and closes
// connections.
func liveTCP(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l.Addr().String()
}

// counter is an HTTP handler answering 200 "ok" and counting requests.
type counter struct{ n atomic.Int64 }

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.n.Add(1)
	w.Write([]byte("ok"))
}

// blockingServer returns an HTTP server whose handler blocks until the
// request is canceled or the test ends: a server that accepted the request
// and never answers.
func blockingServer(t *testing.T) *httptest.Server {
	t.Helper()
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(func() { close(stop); srv.Close() })
	return srv
}

// requireKind asserts that err is a *CheckError of kind k, and logs it.
func requireKind(t *testing.T, err error, k Kind) *CheckError {
	t.Helper()
	require.Error(t, err)
	t.Logf("error: %v", err)
	var ce *CheckError
	require.True(t, errors.As(err, &ce), "want *CheckError, got %T: %v", err, err)
	require.Equal(t, k, ce.Kind, "kind of %v", err)
	require.ErrorIs(t, err, k)
	return ce
}

// fakeClock is a settable clock for a List's now seam.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// requireGoroutinesSettle waits until the number of goroutines is back to
// at most before, failing with a dump of all stacks if it does not within
// a generous bound.
func requireGoroutinesSettle(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(promptly)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, want at most %d:\n%s", n, before, buf)
		}
		time.Sleep(10 * time.Millisecond) // a goroutine's end has no event to wait on
	}
}

// funcCheck returns a Func check, failing the test on a config error.
func funcCheck(t *testing.T, name string, f func(context.Context) error, opts ...Option) Check {
	t.Helper()
	return validCheck(t)(Func(name, f, opts...))
}

// tcpCheck returns a TCP check, failing the test on a config error.
func tcpCheck(t *testing.T, addr string, opts ...Option) Check {
	t.Helper()
	return validCheck(t)(TCP(addr, opts...))
}

// validCheck returns a function that fails the test when a constructor
// returned an error, and returns its Check otherwise.
func validCheck(t *testing.T) func(Check, error) Check {
	return func(c Check, err error) Check {
		t.Helper()
		require.NoError(t, err)
		require.NotNil(t, c)
		return c
	}
}
