package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// running returns the pids of the processes running a program from
// dir, found by scanning /proc: the demo, its children and its reaper,
// whoever their parent is now. Zombies have no executable and are not
// counted.
func running(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var pids []string
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil {
			continue
		}
		if filepath.Dir(strings.TrimSuffix(exe, " (deleted)")) == dir {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// assertNothingLeft checks that no process of the programs in dir runs
// and tmp is empty, allowing the reaper up to a generous bound to see
// the last child go and remove the directory.
func assertNothingLeft(t *testing.T, dir, tmp string) {
	t.Helper()
	var pids []string
	var left []os.DirEntry
	deadline := time.Now().Add(30 * time.Second)
	for {
		pids = running(t, dir)
		var err error
		left, err = os.ReadDir(tmp)
		require.NoError(t, err)
		if len(pids) == 0 && len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // observing other processes: there is nothing to wait on
	}
	assert.Empty(t, pids, "processes left running")
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	assert.Empty(t, names, "left in the temporary directory")
}

func needProc(t *testing.T) {
	if _, err := os.Readlink("/proc/self/exe"); err != nil || runtime.GOOS == "windows" {
		t.Skip("needs /proc to find leftover processes")
	}
}

// startDemo starts the demo with -json and returns it once the
// installer is installing a package: the poller, the installer and
// the reaper are running and the temporary directory has files in it.
// The demo's standard output is returned too, for the rest to be read
// or the pipe closed.
func startDemo(t *testing.T, dir, tmp string, stderr io.Writer) (*exec.Cmd, io.ReadCloser, *bufio.Reader) {
	t.Helper()
	return startDemoWith(t, dir, tmp, stderr, nil)
}

// startDemoWith is startDemo with the demo's process attributes.
func startDemoWith(t *testing.T, dir, tmp string, stderr io.Writer, attr *syscall.SysProcAttr) (*exec.Cmd, io.ReadCloser, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(exe(dir, "demo"), "-json", "-tempo", "0.5")
	cmd.SysProcAttr = attr
	cmd.Env = cleanEnv(tmp)
	cmd.Stderr = stderr
	cmd.WaitDelay = time.Minute
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill() })
	r := bufio.NewReader(out)
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err, "the demo ended before the installer installed anything")
		if strings.Contains(line, `"prog":"installer"`) && strings.Contains(line, `"event":"installing"`) {
			break
		}
	}
	require.GreaterOrEqual(t, len(running(t, dir)), 4, "demo, reaper, poller and installer")
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.NotEmpty(t, left, "the demo's temporary directory")
	return cmd, out, r
}

// TestDemoLeavesNothing ends the demo in the middle of its scenario in
// every way it can end and checks that no process of it is left and
// its temporary directory is gone: a signal it handles (Ctrl-C,
// SIGTERM), its output pipe closing (SIGPIPE on the next line), and
// kill -9, which it cannot handle at all.
func TestDemoLeavesNothing(t *testing.T) {
	needProc(t)
	dir := build(t)

	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			tmp := t.TempDir()
			var stderr bytes.Buffer
			cmd, _, r := startDemo(t, dir, tmp, &stderr)
			require.NoError(t, cmd.Process.Signal(sig))
			go io.Copy(io.Discard, r)
			err := cmd.Wait()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, 1, ee.ExitCode(), "stopped before the end: %s", stderr.String())
			assert.Contains(t, stderr.String(), "the installer and the poller are stopped and the temporary files removed")
			assertNothingLeft(t, dir, tmp)
		})
	}

	t.Run("closed-output", func(t *testing.T) {
		tmp := t.TempDir()
		var stderr bytes.Buffer
		cmd, out, _ := startDemo(t, dir, tmp, &stderr)
		out.Close() // as head(1) does once it has its lines
		err := cmd.Wait()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, 1, ee.ExitCode(), "%s", stderr.String())
		assert.Contains(t, stderr.String(), "broken pipe")
		assertNothingLeft(t, dir, tmp)
	})

	t.Run("head", func(t *testing.T) {
		sh, err := exec.LookPath("sh")
		if err != nil {
			t.Skip("no sh")
		}
		if _, err := exec.LookPath("head"); err != nil {
			t.Skip("no head")
		}
		tmp := t.TempDir()
		cmd := exec.Command(sh, "-c", `"$0" -json | head -3`, exe(dir, "demo"))
		cmd.Env = cleanEnv(tmp)
		out, err := cmd.Output()
		require.NoError(t, err)
		assert.Equal(t, 3, strings.Count(string(out), "\n"), "%s", out)
		assertNothingLeft(t, dir, tmp)
	})

	t.Run("SIGKILL", func(t *testing.T) {
		tmp := t.TempDir()
		cmd, _, r := startDemo(t, dir, tmp, io.Discard)
		require.NoError(t, cmd.Process.Kill())
		go io.Copy(io.Discard, r)
		err := cmd.Wait()
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee), "%v", err)
		assert.Equal(t, syscall.SIGKILL, ee.Sys().(syscall.WaitStatus).Signal())
		assertNothingLeft(t, dir, tmp)
	})
}
