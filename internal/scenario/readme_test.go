package scenario

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
	"github.com/agentlock/agentlock/logon"
)

// The Go snippets of README.md, exactly as they appear there (the test
// below compares them), so that they compile as written.

// README snippet begin

func setup() (*lock.Coordinator, *logon.List, error) {
	c, err := lock.New("pcm-install", lock.WithPurpose("querying"))
	if err != nil {
		return nil, nil, err
	}
	var servers []logon.Server
	for _, url := range []string{"http://logon1", "http://logon2"} {
		check, err := logon.HTTP(url+"/health", logon.WithTimeout(2*time.Second))
		if err != nil {
			return nil, nil, err // a bad URL or option, reported at startup
		}
		servers = append(servers, logon.Server{Name: url, Check: check})
	}
	list, err := logon.NewList(servers)
	return c, list, err
}

// README snippet end

// README snippet begin

// The installer (a service): validate a logon server first, lock second.
func install(ctx context.Context, c *lock.Coordinator, servers *logon.List) error {
	v := servers.Validation() // one per acquisition: it remembers the server it checked
	lease, err := c.Acquire(ctx, lock.WithPrecondition(v.Check), lock.WithRecheck())
	if err != nil {
		return err // no server answered, or ctx ended: the lock was never held
	}
	defer lease.Release()
	if err := lease.SetPurpose("installing Office 97"); err != nil { // the poller sees this at once
		return err
	}
	srv, _ := v.Server() // the server that was checked, for this acquisition
	return installFrom(ctx, srv.Name)
}

// README snippet end

// README snippet begin

// The desktop program: who holds the lock? Holder never takes it.
func status(ctx context.Context, c *lock.Coordinator) string {
	h, err := c.Holder(ctx)
	switch {
	case errors.Is(err, lock.ErrNotHeld):
		return "nothing is being installed"
	case err != nil:
		return err.Error()
	}
	return fmt.Sprintf("pid %d: %s, for %v", h.PID, h.Purpose, time.Since(h.Since).Round(time.Second))
}

// A tool that needs the lock but must not wait. TryAcquire takes the
// lock when it is free, so what it returns is released.
func repairNow(ctx context.Context, c *lock.Coordinator) error {
	lease, err := c.TryAcquire(ctx, lock.WithPurpose("repairing shortcuts"))
	if err != nil {
		return err // a *lock.BusyError says who holds it
	}
	defer lease.Release()
	return repairShortcuts(ctx)
}

// README snippet end

// installFrom and repairShortcuts stand for the program's own work.
var (
	installFrom     = func(ctx context.Context, server string) error { return nil }
	repairShortcuts = func(ctx context.Context) error { return nil }
)

var (
	readmeBlock  = regexp.MustCompile("(?s)```go\n(.*?)```")
	snippetBlock = regexp.MustCompile("(?s)// README snippet begin\n(.*?)\n// README snippet end\n")
)

// The README's Go blocks are the snippets above, in order, byte for byte.
func TestReadmeSnippetsAreCompiled(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	self, err := os.ReadFile("readme_test.go")
	require.NoError(t, err)
	var want, got []string
	for _, m := range readmeBlock.FindAllStringSubmatch(string(readme), -1) {
		want = append(want, strings.TrimSpace(m[1]))
	}
	for _, m := range snippetBlock.FindAllStringSubmatch(string(self), -1) {
		got = append(got, strings.TrimSpace(m[1]))
	}
	require.NotEmpty(t, want, "README.md has Go snippets")
	assert.Equal(t, want, got, "README.md's ```go blocks and the snippets in readme_test.go must be identical")
}

// The snippets do what the README says: the installer fails over to the
// second server, the desktop sees what it does, and the tool that must
// not wait neither waits nor keeps the lock.
func TestReadmeSnippetsRun(t *testing.T) {
	ctx := context.Background()
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer dead.Close()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ok.Close()
	servers, err := logon.NewList([]logon.Server{
		{Name: dead.URL, Check: mustCheck(logon.HTTP(dead.URL))},
		{Name: ok.URL, Check: mustCheck(logon.HTTP(ok.URL))},
	})
	require.NoError(t, err)
	c, err := lock.New("pcm-install", lock.WithDir(proctest.TempDir(t)), lock.WithPurpose("querying"))
	require.NoError(t, err)

	assert.Equal(t, "nothing is being installed", status(ctx, c))
	var used, seen string
	installFrom = func(ctx context.Context, server string) error {
		used, seen = server, status(ctx, c)
		return repairNow(ctx, c)
	}
	defer func() { installFrom = func(context.Context, string) error { return nil } }()
	err = install(ctx, c, servers)
	assert.ErrorIs(t, err, lock.ErrBusy, "repairNow does not wait")
	assert.Equal(t, ok.URL, used, "the installer used the server that passed")
	assert.Regexp(t, fmt.Sprintf(`^pid %d: installing Office 97, for \d+s$`, os.Getpid()), seen)
	assert.Equal(t, "nothing is being installed", status(ctx, c), "install released the lock")
	require.NoError(t, repairNow(ctx, c))
	assert.Equal(t, "nothing is being installed", status(ctx, c), "repairNow released the lock")

	// setup uses the system-wide lock directory, which this machine may
	// lack; it touches no network.
	if c, l, err := setup(); err != nil {
		t.Logf("setup: %v", err)
	} else {
		assert.Equal(t, "pcm-install", c.Name())
		assert.NotNil(t, l)
	}
}

// mustCheck returns c, panicking when its constructor failed.
func mustCheck(c logon.Check, err error) logon.Check {
	if err != nil {
		panic(err)
	}
	return c
}
