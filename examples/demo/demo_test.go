package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/examples/internal/report"
	"github.com/agentlock/agentlock/internal/proc"
)

// raceEnabled is set by race_test.go: the programs are then built with
// the race detector too.
var raceEnabled bool

// testTempo runs the scenario at its real durations (about 25 s for
// both orders). The claim "no spurious busy message in the fixed order"
// rests on the installer's short hold while it reads the catalog staying
// under the poller's grace period (0.6 s at this tempo); at 0.4 (0.24 s)
// a loaded machine broke it, with the race detector on.
const testTempo = "1"

// built is the directory the example programs are built into, once
// per test binary (see build).
var built struct {
	once sync.Once
	dir  string
	err  error
	log  string
}

// TestMain removes the programs built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// build builds the three example programs into a temporary directory,
// once, and returns it.
func build(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the examples with")
	}
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "agentlock-examples-"); built.err != nil {
			return
		}
		args := []string{"build", "-o", built.dir + string(filepath.Separator)}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "github.com/agentlock/agentlock/examples/installer",
			"github.com/agentlock/agentlock/examples/poller",
			"github.com/agentlock/agentlock/examples/demo")
		start := time.Now()
		out, err := exec.Command(goBin, args...).CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v: %s", err, out)
		}
		built.log = fmt.Sprintf("built the installer, the poller and the demo in %v (race: %v)", time.Since(start).Round(time.Millisecond), raceEnabled)
	})
	require.NoError(t, built.err)
	t.Log(built.log)
	return built.dir
}

func exe(dir, name string) string {
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	return filepath.Join(dir, name)
}

type summary struct {
	Event   string   `json:"event"`
	Policy  string   `json:"policy"`
	Results []result `json:"results"`
}

// runDemo runs the demo binary with args and a temporary directory of
// its own, and returns its events, its summary and its pid. It checks
// that the demo exits 0, leaves nothing in its temporary directory and
// no process running.
func runDemo(t *testing.T, demo string, args ...string) ([]report.Event, summary, int) {
	t.Helper()
	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, demo, args...)
	cmd.Env = cleanEnv(tmp)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("demo %s: %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	if stderr.Len() > 0 {
		t.Logf("demo stderr:\n%s", stderr.String())
	}
	require.NoError(t, err)

	var events []report.Event
	var sum summary
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.Contains(line, []byte(`"event":"summary"`)) {
			require.NoError(t, json.Unmarshal(line, &sum), "%s", line)
			continue
		}
		var e report.Event
		if json.Unmarshal(line, &e) == nil {
			events = append(events, e)
			t.Log(report.Format(e, false, false))
		} else {
			t.Log(string(line))
		}
	}

	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, left, "the demo left files in its temporary directory")
	pids := []int{cmd.Process.Pid}
	for _, r := range sum.Results {
		pids = append(pids, r.PIDs...)
	}
	for _, pid := range pids {
		assert.False(t, proc.Alive(proc.ID{PID: pid}), "process %d is still running", pid)
	}
	return events, sum, cmd.Process.Pid
}

// cleanEnv is the environment for a program under test: none of the
// user's AGENTLOCK_ settings (a policy, a role), and tmp as its
// temporary directory.
func cleanEnv(tmp string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AGENTLOCK_") && !strings.HasPrefix(kv, "TMPDIR=") &&
			!strings.HasPrefix(kv, "TMP=") && !strings.HasPrefix(kv, "TEMP=") {
			env = append(env, kv)
		}
	}
	return append(env, "TMPDIR="+tmp, "TMP="+tmp, "TEMP="+tmp)
}

// checkResult checks what both orders must achieve: every package
// installed exactly once (by the events and by the guarded file), the
// killed install redone once, the guarded file verified.
func checkResult(t *testing.T, r result) {
	t.Helper()
	all := append(append([]string(nil), names(firstPackages)...), names(morePackages)...)
	assert.True(t, r.Verified, "%s: guarded file not verified: %s", r.Mode, r.VerifyError)
	assert.Equal(t, len(all), r.Installs, "%s: installs completed", r.Mode)
	for _, name := range all {
		assert.Equal(t, 1, r.InstalledEvents[name], "%s: %s installed events", r.Mode, name)
		assert.Equal(t, 1, r.Recorded[name], "%s: %s installs recorded in the guarded file", r.Mode, name)
	}
	assert.True(t, r.Recovered, "%s: the killed install was not redone once", r.Mode)
	assert.Equal(t, "installer", r.AbandonedBy, "%s: the restarted installer gets the abandoned lease (the poller only watches)", r.Mode)
	assert.True(t, r.Interrupted, "%s: the poller did not report the interrupted install", r.Mode)
	assert.GreaterOrEqual(t, r.ValidationFailures, 2, "%s: failed validations while the server was down", r.Mode)
	assert.GreaterOrEqual(t, len(r.PIDs), 3, "%s: poller, installer, restarted installer", r.Mode)
}

// TestDemoCompare builds the three programs, runs the demo in its
// default mode (both orders, then the summary) headlessly with -json,
// and checks the story's claims: validate first, lock second gives no
// spurious busy message; the legacy order gives at least one; both
// install every package exactly once, recover the killed install, and
// leave a guarded file that verifies, no process and no temporary
// file.
func TestDemoCompare(t *testing.T) {
	dir := build(t)
	events, sum, _ := runDemo(t, exe(dir, "demo"), "-json", "-tempo", testTempo,
		"-installer-bin", exe(dir, "installer"), "-poller-bin", exe(dir, "poller"))
	require.Len(t, sum.Results, 2)
	fixed, legacy := sum.Results[0], sum.Results[1]
	require.Equal(t, "fixed", fixed.Mode)
	require.Equal(t, "legacy", legacy.Mode)
	t.Logf("fixed: %+v", fixed)
	t.Logf("legacy: %+v", legacy)
	checkResult(t, fixed)
	checkResult(t, legacy)

	assert.Equal(t, 0, fixed.Spurious, "validate first, lock second: no spurious busy message")
	assert.Equal(t, 0, fixed.FailuresLocked, "validate first: a failed validation never holds the lock")
	assert.Positive(t, fixed.Busy, "real installs are announced")
	assert.GreaterOrEqual(t, legacy.Spurious, 1, "the legacy order shows spurious busy messages")
	assert.Equal(t, legacy.ValidationFailures, legacy.FailuresLocked, "legacy: every failed validation held the lock")

	// The events the summary counts are in the stream, from the
	// separately built programs (not the demo binary re-executed).
	var spurious, busy int
	progs := map[string]bool{}
	for _, e := range events {
		progs[e.Prog] = true
		if e.Prog == "poller" && e.Event == "busy" {
			busy++
			if !strings.HasPrefix(e.Purpose, "installing ") {
				spurious++
				assert.Equal(t, "legacy", e.Scenario, "spurious busy message in the fixed scenario: %s", e.Msg)
			}
		}
	}
	assert.Equal(t, fixed.Busy+legacy.Busy, busy)
	assert.Equal(t, legacy.Spurious, spurious)
	assert.True(t, progs["installer"] && progs["poller"] && progs["demo"], "events from every program: %v", progs)
}

// TestDemoReexec runs the fixed scenario the way the README's first
// command does: the demo binary re-executes itself as the installer
// and the poller. Only the summary is printed (-quiet -json).
func TestDemoReexec(t *testing.T) {
	dir := build(t)
	events, sum, demoPID := runDemo(t, exe(dir, "demo"), "-mode", "fixed", "-quiet", "-json", "-tempo", testTempo)
	assert.Empty(t, events, "-quiet prints only the summary")
	require.Len(t, sum.Results, 1)
	r := sum.Results[0]
	checkResult(t, r)
	assert.Equal(t, 0, r.Spurious)
	assert.NotContains(t, r.PIDs, demoPID)
}
