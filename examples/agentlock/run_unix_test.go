//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

// A command killed by a signal gives 128+N, as shells report it.
func TestRunSignalStatus(t *testing.T) {
	dir := lockDir(t)
	for sig, want := range map[string]int{"TERM": 143, "KILL": 137, "HUP": 129} {
		r := agentlock(t, "", "run", "-dir", dir, "job", "--", "sh", "-c", "kill -"+sig+" $$")
		assert.Equal(t, want, r.code, sig)
	}
}

// INT, TERM and HUP sent to agentlock reach the command, which decides
// what to do with them; the lock is held until it has ended.
func TestRunForwardsSignals(t *testing.T) {
	dir := lockDir(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		s := start(t, "run", "-dir", dir, "job", "--", "sh", "-c",
			`trap 'echo got; exit 42' INT TERM HUP; echo ready; while :; do sleep 0.01; done`)
		eventually(t, 20*time.Second, "the command is ready", func() bool { return strings.Contains(s.out.String(), "ready") })
		require.NoError(t, s.cmd.Process.Signal(sig))
		assert.Equal(t, 42, s.wait(t, 20*time.Second), sig.String())
		assert.Contains(t, s.out.String(), "got", sig.String())
	}

	// A signal while waiting for the lock ends the wait: 128+N, and the
	// command never runs.
	h := startHolder(t, dir, "job", "installing")
	marker := filepath.Join(dir, "ran")
	s := start(t, "run", "-dir", dir, "job", "--", "touch", marker)
	time.Sleep(300 * time.Millisecond) // run is waiting for the lock by now (it says nothing while it waits)
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, 143, s.wait(t, 20*time.Second))
	assert.NoFileExists(t, marker)
	h.release(t)
}

// Four concurrent runners, 250 runs each of a shell script that reads a
// counter file, adds one and writes it back: 1000 exactly, so no two
// runs overlapped.
func TestRunCounter(t *testing.T) {
	dir := lockDir(t)
	counter := filepath.Join(dir, "counter")
	require.NoError(t, os.WriteFile(counter, []byte("0\n"), 0o644))
	script := filepath.Join(dir, "increment.sh")
	require.NoError(t, os.WriteFile(script, []byte(`n=$(cat "$1"); echo $((n + 1)) > "$1"`+"\n"), 0o644))

	runs := 250
	if testing.Short() {
		runs = 25
	}
	agentlockExe := plainBinary(t)
	loop := fmt.Sprintf(`i=0; while [ $i -lt %d ]; do "$AGENTLOCK" run -dir "$1" counter -- sh "$2" "$3" || exit $?; i=$((i + 1)); done`, runs)
	var wg sync.WaitGroup
	start := time.Now()
	for range 4 {
		cmd := exec.Command("sh", "-c", loop, "runner", dir, script, counter)
		cmd.Env = append(os.Environ(), envCommand+"=1", "AGENTLOCK="+agentlockExe)
		wg.Go(func() {
			out, err := cmd.CombinedOutput()
			assert.NoError(t, err, "%s", out)
		})
	}
	wg.Wait()
	b, err := os.ReadFile(counter)
	require.NoError(t, err)
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err, "%q", b)
	assert.Equal(t, 4*runs, n)
	t.Logf("%d runs in %v", 4*runs, time.Since(start).Round(time.Millisecond))
}

// kill -9 of agentlock run while a shell script runs: the script stops
// at once, its next step never runs.
func TestRunKilledScriptStops(t *testing.T) {
	dir := lockDir(t)
	marker := filepath.Join(dir, "after")
	s := start(t, "run", "-dir", dir, "job", "--", "sh", "-c", `echo started; sleep 1; touch "$0"`, marker)
	eventually(t, 20*time.Second, "the script started", func() bool { return strings.Contains(s.out.String(), "started") })
	require.NoError(t, s.cmd.Process.Kill())
	s.wait(t, 10*time.Second)
	time.Sleep(1500 * time.Millisecond) // past the script's 1s: it would have touched the marker by now
	assert.NoFileExists(t, marker, "the script went on after agentlock was killed")
}

// The guard that runs the command kills it when agentlock dies, which
// it sees as the end of its pipe; here the test stands in for agentlock.
func TestGuardKillsCommandWhenAgentlockDies(t *testing.T) {
	dir := lockDir(t)
	ticks := filepath.Join(dir, "ticks")
	r, w, err := os.Pipe()
	require.NoError(t, err)
	cmd := command(t, append([]string{guardCommand}, helperArgv(t, "tick", ticks)...)...)
	cmd.ExtraFiles = []*os.File{r}
	require.NoError(t, cmd.Start())
	r.Close()
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	eventually(t, 20*time.Second, "the command ticks", func() bool {
		b, _ := os.ReadFile(ticks)
		return strings.Count(string(b), "\n") >= 5
	})
	w.Close() // what the kernel does when agentlock dies
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		killTicker(t, ticks)
		t.Fatal("the guard did not end")
	}
	assert.Equal(t, 128+9, cmd.ProcessState.ExitCode(), "the command was killed with SIGKILL")
	size := fileSize(t, ticks)
	time.Sleep(300 * time.Millisecond) // dozens of ticks, were the command still running
	if !assert.Equal(t, size, fileSize(t, ticks), "the command went on running") {
		killTicker(t, ticks)
	}

	// With its parent alive, the guard runs the command to the end and
	// passes its status on.
	r, w, err = os.Pipe()
	require.NoError(t, err)
	defer w.Close()
	cmd = command(t, guardCommand, "sh", "-c", "exit 7")
	cmd.ExtraFiles = []*os.File{r}
	err = cmd.Run()
	r.Close()
	assert.Equal(t, 7, cmd.ProcessState.ExitCode(), "%v", err)
}

// A program that locks the lock file without this package (flock(1))
// publishes no record: run -n still fails and names it as such; on
// Linux, where the lock table in /proc/locks tells its pid, who shows it
// as a foreign holder and wait waits for it.
func TestRunForeignHolder(t *testing.T) {
	dir := lockDir(t)
	stop := flockHolder(t, dir, "job")

	r := agentlock(t, "", "run", "-n", "-dir", dir, "job", "--", "true")
	assert.Equal(t, 1, r.code)
	if runtime.GOOS == "linux" {
		assert.Regexp(t, `job is held by pid \d+ \(foreign: locked without agentlock, no record\)`, r.stderr)
	} else {
		assert.Contains(t, r.stderr, "job is held by a holder with no record")
	}
	if runtime.GOOS != "linux" {
		return
	}

	r = agentlock(t, "", "who", "-dir", dir, "job")
	assert.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `job: held by pid \d+ \(foreign: locked without agentlock, no record\)`, r.stdout)
	r = agentlock(t, "", "who", "-json", "-dir", dir, "job")
	assert.Equal(t, 0, r.code, r.stderr)
	var st map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st), r.stdout)
	assert.Equal(t, "held", st["state"])
	assert.Equal(t, true, st["foreign"])
	assert.NotZero(t, st["pid"])
	r = agentlock(t, "", "ls", "-dir", dir)
	assert.Regexp(t, `job +held by pid \d+ \(foreign`, r.stdout)

	r = agentlock(t, "", "wait", "-w", "500ms", "-dir", dir, "job")
	assert.Equal(t, 1, r.code, "wait must go on waiting while a foreign holder holds: %s", r.stderr)
	w := start(t, "wait", "-dir", dir, "job")
	time.Sleep(300 * time.Millisecond) // time for wait to end, were it to end wrongly
	select {
	case <-w.done:
		t.Fatalf("wait returned while flock(1) held the lock: %d %s", w.code, w.errb.String())
	default:
	}
	stop()
	assert.Equal(t, 0, w.wait(t, 20*time.Second))
}

// flockHolder has flock(1) lock NAME.lock in dir without this package
// and returns a function that ends it.
func flockHolder(t *testing.T, dir, name string) (stop func()) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("no flock(1) here")
	}
	require.Equal(t, 0, agentlock(t, "", "run", "-dir", dir, name, "--", "true").code) // creates the files
	s := exec.Command("flock", filepath.Join(dir, name+".lock"), "-c", "echo locked; sleep 30")
	out := &lockedBuffer{}
	s.Stdout = out
	s.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // so that stop kills the sleep too
	require.NoError(t, s.Start())
	stop = sync.OnceFunc(func() { syscall.Kill(-s.Process.Pid, syscall.SIGKILL); s.Wait() })
	t.Cleanup(stop)
	eventually(t, 20*time.Second, "flock(1) holds the lock", func() bool { return strings.Contains(out.String(), "locked") })
	return stop
}

// plainBinary builds the command with go build, without the race
// detector, for a test that starts it a thousand times: a race-enabled
// test binary takes several times longer to start. Without a Go
// toolchain it returns the test binary.
func plainBinary(t *testing.T) string {
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Logf("no go tool (%v): running the test binary", err)
		return exe(t)
	}
	bin := filepath.Join(proctest.TempDir(t), "agentlock")
	out, err := exec.Command(gotool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Logf("go build: %v\n%s\nrunning the test binary", err, out)
		return exe(t)
	}
	return bin
}

// kill -9 of agentlock run while the command's own child runs: that
// grandchild is killed too, so nothing of the command goes on after a
// second runner has taken the lock.
func TestRunKilledGrandchildStops(t *testing.T) {
	dir := lockDir(t)
	log := filepath.Join(dir, "log")
	s := start(t, "run", "-dir", dir, "x", "--", "sh", "-c",
		`echo started; sh -c 'sleep 1.5; echo inner >> "$0"' "$0" >/dev/null 2>&1; echo outer >> "$0"`, log)
	eventually(t, 20*time.Second, "the command started", func() bool { return strings.Contains(s.out.String(), "started") })
	require.NoError(t, s.cmd.Process.Kill())
	// The second runner takes the lock the moment the system releases it.
	eventually(t, 20*time.Second, "a second runner got the lock", func() bool {
		r := agentlock(t, "", "run", "-n", "-dir", dir, "x", "--", "sh", "-c", `echo second >> "$0"; sleep 2.5`, log)
		return r.code == 0
	})
	b, _ := os.ReadFile(log)
	assert.Equal(t, "second\n", string(b), "the killed runner's command went on under the second runner's lock")
}

// The lock file removed while the command runs (a cleaner): the lock is
// lost, so the command is stopped at once (SIGTERM, which it may trap,
// then SIGKILL), and run says so and exits 4.
func TestRunStopsWhenLockLost(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" && !strings.HasSuffix(runtime.GOOS, "bsd") {
		t.Skip("Lease.Lost is not closed on " + runtime.GOOS)
	}
	dir := lockDir(t)
	log := filepath.Join(dir, "log")
	for _, script := range []string{
		`echo started; sleep 30; echo finished >> "$0"`,
		`trap '' TERM; echo started; sleep 30; echo finished >> "$0"`, // ignores SIGTERM: killed after the grace
	} {
		s := start(t, "run", "-dir", dir, "job", "--", "sh", "-c", script, log)
		eventually(t, 20*time.Second, "the command started", func() bool { return strings.Contains(s.out.String(), "started") })
		require.NoError(t, os.Remove(filepath.Join(dir, "job.lock")))
		assert.Equal(t, 4, s.wait(t, 15*time.Second), script)
		assert.Equal(t, "agentlock run: lost the lock job (its lock file was removed or replaced): stopped the command\n", s.errb.String())
		assert.NoFileExists(t, log)
	}
}
