package installer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/examples/internal/instr"
	"github.com/agentlock/agentlock/examples/internal/report"
	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/guarded"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

// roleInstaller is the child role that runs the installer program.
const roleInstaller = "installer"

func TestMain(m *testing.M) {
	// The installer program itself, as a child process.
	proctest.Role(roleInstaller, func(args []string, _ *bufio.Scanner, _ *proctest.Writer) int {
		return Main(args, os.Stdout, os.Stderr)
	})
	proctest.Main(m)
}

// setup makes the directories of one installation and a share that
// offers cat.
type setup struct {
	lockDir, file, share, target string
}

func newSetup(t *testing.T, cat instr.Catalog) setup {
	root := proctest.TempDir(t)
	s := setup{
		lockDir: filepath.Join(root, "lock"),
		file:    filepath.Join(root, "state", "instructions"),
		share:   filepath.Join(root, "share"),
		target:  filepath.Join(root, "target"),
	}
	for _, d := range []string{s.lockDir, filepath.Dir(s.file), s.share} {
		require.NoError(t, os.Mkdir(d, 0o755))
	}
	b, err := json.Marshal(cat)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(s.share, instr.CatalogFile), b, 0o644))
	return s
}

func (s setup) config() Config {
	return Config{Shares: []string{s.share}, File: s.file, LockDir: s.lockDir, LockName: "pcm-install", Target: s.target,
		InstallTime: 50 * time.Millisecond, CheckTimeout: time.Second, Interval: time.Second, Once: true}
}

func (s setup) read(t *testing.T) instr.File {
	c, err := lock.New("pcm-install", lock.WithDir(s.lockDir))
	require.NoError(t, err)
	g, err := guarded.Open(s.file, guarded.By(c))
	require.NoError(t, err)
	b, err := g.Read()
	require.NoError(t, err)
	f, err := instr.Decode(b)
	require.NoError(t, err)
	return f
}

func events(t *testing.T, buf *bytes.Buffer) []report.Event {
	var evs []report.Event
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var e report.Event
		require.NoError(t, json.Unmarshal([]byte(line), &e), line)
		t.Log(report.Format(e, false, false))
		evs = append(evs, e)
	}
	return evs
}

func find(evs []report.Event, event string) *report.Event {
	for i := range evs {
		if evs[i].Event == event {
			return &evs[i]
		}
	}
	return nil
}

// TestKilledInstallRedoneOnce kills an installer (kill -9) in the middle
// of an install; the next run gets the abandoned lease, finds the
// package marked installing, installs it again, and counts it once.
func TestKilledInstallRedoneOnce(t *testing.T) {
	s := newSetup(t, instr.Catalog{Packages: []instr.CatalogEntry{{Name: "Office 97", Files: 4}, {Name: "Quake", Files: 1}}})
	child := proctest.Start(t, roleInstaller, "-share", s.share, "-file", s.file, "-lock-dir", s.lockDir, "-target", s.target,
		"-install-time", "2s", "-once", "-json")
	deadline := time.Now().Add(20 * time.Second)
	for {
		line, ok := child.Next(time.Until(deadline))
		require.True(t, ok, "the child never started installing")
		if strings.Contains(line, `"event":"installing"`) {
			break
		}
	}
	// Kill it in the middle of Office 97: once the first of its four
	// files is written.
	first := filepath.Join(s.target, instr.Slug("Office 97"), "file-01.dat")
	require.Eventually(t, func() bool { _, err := os.Stat(first); return err == nil },
		20*time.Second, time.Millisecond, "the child never wrote a file of Office 97")
	child.Kill()
	child.Wait(10 * time.Second)
	f := s.read(t)
	require.Equal(t, instr.Installing, f.Find("Office 97").State)

	var buf bytes.Buffer
	in, err := New(s.config(), report.NewPrinter(&buf, "installer", true, false))
	require.NoError(t, err)
	require.NoError(t, in.RunOnce(context.Background()))
	evs := events(t, &buf)

	locked := find(evs, EvLocked)
	require.NotNil(t, locked)
	assert.True(t, locked.Abandoned, "the lease after a kill -9 says Abandoned")
	assert.NotNil(t, find(evs, EvAbandoned))
	rec := find(evs, EvRecovering)
	require.NotNil(t, rec)
	assert.Equal(t, "Office 97", rec.Package)
	assert.Equal(t, child.PID(), rec.Holder)

	f = s.read(t)
	for _, name := range []string{"Office 97", "Quake"} {
		p := f.Find(name)
		require.NotNil(t, p, name)
		assert.Equal(t, instr.Done, p.State, name)
		assert.Equal(t, 1, p.Installs, "%s is counted once", name)
		assert.Equal(t, os.Getpid(), p.PID, name)
	}
	assert.Equal(t, 2, f.Find("Office 97").Attempts)
	manifest, err := os.ReadFile(filepath.Join(s.target, "office-97", "MANIFEST"))
	require.NoError(t, err)
	assert.Contains(t, string(manifest), "installed-by: "+strconv.Itoa(os.Getpid()))
	ents, err := os.ReadDir(filepath.Join(s.target, "office-97"))
	require.NoError(t, err)
	assert.Len(t, ents, 5, "four files and the MANIFEST")

	// A second run has nothing to do.
	buf.Reset()
	require.NoError(t, in.RunOnce(context.Background()))
	assert.NotNil(t, find(events(t, &buf), EvIdle))
	f = s.read(t)
	assert.Equal(t, 1, f.Find("Office 97").Installs)
}

// TestSilentServer runs the installer against a logon server that
// accepts connections and never answers. Validate first: the lock is
// free for the whole check. Legacy: the lock is held, as "querying".
func TestSilentServer(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		name := map[bool]string{false: "fixed", true: "legacy"}[legacy]
		t.Run(name, func(t *testing.T) {
			s := newSetup(t, instr.Catalog{})
			quit := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-quit:
				}
			}))
			defer srv.Close()
			defer close(quit)

			cfg := s.config()
			cfg.Shares, cfg.Servers, cfg.Legacy = nil, []string{srv.URL}, legacy
			cfg.CheckTimeout = 500 * time.Millisecond
			var buf bytes.Buffer
			in, err := New(cfg, report.NewPrinter(&buf, "installer", true, false))
			require.NoError(t, err)
			other, err := lock.New("pcm-install", lock.WithDir(s.lockDir))
			require.NoError(t, err)

			done := make(chan error, 1)
			go func() { done <- in.RunOnce(context.Background()) }()
			var busy, free int
			var purposes []string
			for running := true; running; {
				select {
				case err := <-done:
					assert.True(t, errors.Is(err, ErrValidation), "%v", err)
					running = false
				case <-time.After(20 * time.Millisecond):
					h, err := other.Holder(context.Background())
					if errors.Is(err, lock.ErrNotHeld) {
						free++
					} else {
						require.NoError(t, err)
						busy++
						purposes = append(purposes, h.Purpose)
					}
				}
			}
			t.Logf("looks at the lock during the run: %d free, %d busy", free, busy)
			inv := find(events(t, &buf), EvInvalid)
			require.NotNil(t, inv)
			assert.Equal(t, legacy, inv.Locked)
			if legacy {
				assert.Greater(t, busy, free, "legacy: the lock is held while the check waits")
				assert.Contains(t, purposes, "querying "+srv.URL)
			} else {
				assert.Zero(t, busy, "validate first: the lock is never held while the check waits")
			}
			_, err = other.Holder(context.Background())
			assert.ErrorIs(t, err, lock.ErrNotHeld, "released after the failure")
		})
	}
}

func TestMainFlags(t *testing.T) {
	var out, errb bytes.Buffer
	assert.Equal(t, 0, Main([]string{"-h"}, &out, &errb))
	assert.Contains(t, out.String(), "validates a logon server")
	assert.Contains(t, out.String(), "-legacy")
	assert.Empty(t, errb.String())

	errb.Reset()
	assert.Equal(t, 2, Main([]string{"-file", "f", "-target", "t"}, &out, &errb))
	assert.Contains(t, errb.String(), "a logon server is needed")

	// A misconfigured logon server is reported before anything is locked
	// or probed.
	errb.Reset()
	code := Main([]string{"-server", "ftp://logon1", "-file", "f", "-target", "t"}, &out, &errb)
	assert.Equal(t, 2, code)
	assert.Contains(t, errb.String(), `-server needs an http:// or https:// URL (got "ftp://logon1")`)
}

// TestStoppedInstallRequeued stops a run (its context ends, as on
// Ctrl-C) in the middle of an install: the partial files are removed,
// the package is queued again, the lock released.
func TestStoppedInstallRequeued(t *testing.T) {
	s := newSetup(t, instr.Catalog{Packages: []instr.CatalogEntry{{Name: "Office 97", Files: 4}}})
	cfg := s.config()
	cfg.InstallTime = 2 * time.Second
	var buf bytes.Buffer
	in, err := New(cfg, report.NewPrinter(&buf, "installer", true, false))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	err = in.RunOnce(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	evs := events(t, &buf)
	assert.NotNil(t, find(evs, EvRequeued))
	assert.NotNil(t, find(evs, EvReleased))
	f := s.read(t)
	p := f.Find("Office 97")
	assert.Equal(t, instr.Queued, p.State)
	assert.Zero(t, p.Installs)
	_, err = os.Stat(filepath.Join(s.target, "office-97"))
	assert.ErrorIs(t, err, os.ErrNotExist, "partial install removed")
}
