package scenario

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
	"github.com/agentlock/agentlock/logon"
)

// The child roles of this package's tests.
const (
	roleInstaller = "installer"
	roleLegacy    = "legacy-installer"
)

func TestMain(m *testing.M) {
	proctest.Role(roleInstaller, installerRole)
	proctest.Role(roleLegacy, legacyRole)
	proctest.Main(m)
}

// installerRole: args dir url purpose. Validates the logon server first
// (HTTP, 2 s timeout), locks second, then waits for "release".
func installerRole(args []string, in *bufio.Scanner, out *proctest.Writer) int {
	check, err := logon.HTTP(args[1], logon.WithTimeout(2*time.Second))
	if err != nil {
		return out.Fail(err)
	}
	c, err := lock.New("pcm-install", lock.WithDir(args[0]), lock.WithPurpose(args[2]), lock.WithPrecondition(check))
	if err != nil {
		return out.Fail(err)
	}
	out.Println("validating")
	l, err := c.Acquire(context.Background())
	if err != nil {
		out.Println("failed", errors.Is(err, lock.ErrPrecondition), strings.ReplaceAll(err.Error(), "\n", " "))
		return 0
	}
	out.Println("locked", l.Token())
	for in.Scan() {
		if in.Text() == "release" {
			l.Release()
			out.Println("released")
		}
	}
	return 0
}

// TestValidateFirstLockSecond is the scenario the library exists for: while
// process A waits on a logon server that accepts connections and never
// answers (2 s timeout), process B's TryAcquire succeeds every time: the
// lock is never held while validating. With a healthy server, A takes
// the lock and B sees it busy, with A's pid and purpose.
func TestValidateFirstLockSecond(t *testing.T) {
	dir := proctest.TempDir(t)
	blackhole := blackholeServer(t)
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	}))
	defer healthy.Close()

	b, err := lock.New("pcm-install", lock.WithDir(dir), lock.WithPurpose("polling"))
	require.NoError(t, err)
	ctx := context.Background()

	a := proctest.Start(t, roleInstaller, dir, blackhole.URL, "installing Office 97")
	a.Expect("validating", time.Minute)
	tries := 0
	var failed string
	for failed == "" {
		l, err := b.TryAcquire(ctx)
		require.NoError(t, err, "B found the lock busy while A was still validating (try %d)", tries)
		tries++
		require.NoError(t, l.Release())
		select {
		case line, ok := <-a.Lines():
			require.True(t, ok, "A exited")
			failed = line
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Logf("B took the lock %d times while A validated against a black hole; A: %s", tries, failed)
	assert.GreaterOrEqual(t, tries, 20)
	assert.True(t, strings.HasPrefix(failed, "failed true "), "A must fail with ErrPrecondition: %q", failed)
	_, err = b.Holder(ctx)
	assert.ErrorIs(t, err, lock.ErrNotHeld, "a failed precondition must publish nothing")

	a2 := proctest.Start(t, roleInstaller, dir, healthy.URL, "installing Office 97")
	a2.Expect("validating", time.Minute)
	a2.Expect("locked", time.Minute)
	_, err = b.TryAcquire(ctx)
	var be *lock.BusyError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, a2.PID(), be.Holder.PID)
	assert.Equal(t, "installing Office 97", be.Holder.Purpose)
	a2.Send("release")
	a2.Expect("released", time.Minute)
}

// legacyRole: args dir url. The 1990s ordering: lock first, then
// validate the logon server while holding the lock.
func legacyRole(args []string, in *bufio.Scanner, out *proctest.Writer) int {
	check, err := logon.HTTP(args[1], logon.WithTimeout(2*time.Second))
	if err != nil {
		return out.Fail(err)
	}
	c, err := lock.New("pcm-install", lock.WithDir(args[0]), lock.WithPurpose("querying "+args[1]))
	if err != nil {
		return out.Fail(err)
	}
	l, err := c.Acquire(context.Background())
	if err != nil {
		return out.Fail(err)
	}
	out.Println("validating")
	err = check(context.Background())
	l.Release()
	out.Println("failed", err != nil)
	return 0
}

// TestLegacyOrderingIsCaught runs the same measurement against the
// legacy ordering, to show that the scenario test can fail: B finds the
// lock busy for the whole network timeout, held by a process that is
// not installing anything.
func TestLegacyOrderingIsCaught(t *testing.T) {
	dir := proctest.TempDir(t)
	blackhole := blackholeServer(t)
	b, err := lock.New("pcm-install", lock.WithDir(dir))
	require.NoError(t, err)
	a := proctest.Start(t, roleLegacy, dir, blackhole.URL)
	a.Expect("validating", time.Minute)
	busy := 0
	var be *lock.BusyError
	for i := 0; i < 20; i++ {
		_, err := b.TryAcquire(context.Background())
		if errors.As(err, &be) {
			busy++
		}
		time.Sleep(10 * time.Millisecond) // spread the 20 looks over the validation
	}
	a.Expect("failed true", time.Minute)
	t.Logf("legacy ordering: B found the lock busy %d of 20 times, held for %q", busy, be.Holder.Purpose)
	assert.Equal(t, 20, busy)
	assert.Equal(t, a.PID(), be.Holder.PID)
}

// blackholeServer is a logon server that accepts requests and never
// answers them (until the test ends).
func blackholeServer(t *testing.T) *httptest.Server {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(hang); srv.Close() })
	return srv
}
