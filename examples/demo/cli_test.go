package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
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

	"github.com/agentlock/agentlock/examples/internal/cli"
)

// runProg runs one of the built programs with args and returns its
// exit status, standard output and standard error.
func runProg(t *testing.T, dir, prog string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(exe(dir, prog), args...)
	cmd.Env = cleanEnv(t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Minute
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s %q: %v", prog, args, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// TestHelp: -h and -help print the usage to standard output and exit 0.
func TestHelp(t *testing.T) {
	dir := build(t)
	for _, prog := range []string{"installer", "poller", "demo"} {
		for _, h := range []string{"-h", "-help", "--help"} {
			code, stdout, stderr := runProg(t, dir, prog, h)
			assert.Equal(t, 0, code, "%s %s", prog, h)
			assert.True(t, strings.HasPrefix(stdout, "usage: "+prog+" "), "%s %s: %q", prog, h, stdout)
			assert.Contains(t, stdout, "-json", "%s %s lists the flags", prog, h)
			assert.Contains(t, stdout, "Exit status: 0", "%s %s documents the exit statuses", prog, h)
			assert.Empty(t, stderr, "%s %s", prog, h)
		}
	}
	_, stdout, _ := runProg(t, dir, "demo", "-h")
	assert.Contains(t, stdout, "the restarted installer takes the lock first, so its lease is marked\n     Abandoned", "demo -h says who sees Abandoned")
	assert.Contains(t, stdout, "-mode order")
	assert.NotContains(t, stdout, "-legacy")
	assert.NotContains(t, stdout, "-compare")
}

// TestUsageErrors: every mistake on the command line exits 2 and prints
// exactly two lines on standard error: one naming the flag and what it
// wants, one pointing to -h. Nothing is printed on standard output and
// nothing is started.
func TestUsageErrors(t *testing.T) {
	dir := build(t)
	files := []string{"-file", "f", "-target", "t"}
	cases := []struct {
		prog string
		args []string
		want string // in the first line
	}{
		{"installer", []string{"-bogus"}, "flag provided but not defined: -bogus"},
		{"installer", []string{"-file"}, "flag needs an argument: -file"},
		{"installer", append([]string{"-server", "ftp://logon1"}, files...), `-server needs an http:// or https:// URL (got "ftp://logon1")`},
		{"installer", append([]string{"-server", "logon1:80"}, files...), "-server needs an http:// or https:// URL"},
		{"installer", files, "a logon server is needed: give -server URL or -share DIR"},
		{"installer", []string{"-share", "s", "-target", "t"}, "-file needs the path of the instruction file"},
		{"installer", []string{"-share", "s", "-file", "f"}, "-target needs the directory to install packages into"},
		{"installer", append([]string{"-share", "s", "-interval", "soon"}, files...), `invalid value "soon" for flag -interval: want a duration such as 500ms, 2s or 1m30s`},
		{"installer", append([]string{"-share", "s", "-interval", "0s"}, files...), "-interval needs a positive duration"},
		{"installer", append([]string{"-share", "s", "-check-timeout", "-1s"}, files...), "-check-timeout needs a positive duration"},
		{"installer", append([]string{"-share", "s", "-once=maybe"}, files...), "-once"},
		{"installer", append([]string{"-share", "s", "now"}, files...), `installer takes only flags (got "now")`},
		{"poller", []string{"-bogus"}, "flag provided but not defined: -bogus"},
		{"poller", nil, "-file needs the path of the instruction file"},
		{"poller", []string{"-file", "f", "-interval", "5"}, `invalid value "5" for flag -interval: want a duration`},
		{"poller", []string{"-file", "f", "-interval", "-1s"}, "-interval needs a positive duration"},
		{"poller", []string{"-file", "f", "-notify", "sometimes"}, `-notify needs a notification policy (see -h): poll: invalid notification policy "sometimes"`},
		{"poller", []string{"-file", "f", "-lock", ""}, "-lock needs a lock name"},
		{"demo", []string{"-bogus"}, "flag provided but not defined: -bogus"},
		{"demo", []string{"-legacy"}, "flag provided but not defined: -legacy"},
		{"demo", []string{"-mode", "both"}, `-mode needs fixed, legacy or compare (got "both")`},
		{"demo", []string{"-tempo", "fast"}, `invalid value "fast" for flag -tempo: want a number`},
		{"demo", []string{"-tempo", "100"}, `-tempo needs a factor between 0.05 and 20 (got "100")`},
		{"demo", []string{"-notify", "after=soon"}, "-notify needs a notification policy"},
		{"demo", []string{"fixed"}, `demo takes only flags (got "fixed")`},
	}
	for _, c := range cases {
		code, stdout, stderr := runProg(t, dir, c.prog, c.args...)
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		assert.Equal(t, 2, code, "%s %q: %s", c.prog, c.args, stderr)
		assert.Empty(t, stdout, "%s %q", c.prog, c.args)
		if assert.Len(t, lines, 2, "%s %q: %s", c.prog, c.args, stderr) {
			assert.True(t, strings.HasPrefix(lines[0], c.prog+": "), "%s %q: %s", c.prog, c.args, lines[0])
			assert.Contains(t, lines[0], c.want, "%s %q", c.prog, c.args)
			assert.Equal(t, "Run '"+c.prog+" -h' for usage.", lines[1], "%s %q", c.prog, c.args)
		}
	}
}

// TestRuntimeFailures: a program that starts and fails exits 1 and
// says why on standard error.
func TestRuntimeFailures(t *testing.T) {
	dir := build(t)
	tmp := t.TempDir()
	// A logon server that refuses connections: a port that was just
	// closed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "http://" + l.Addr().String()
	l.Close()
	state := filepath.Join(tmp, "state")
	require.NoError(t, os.Mkdir(state, 0o755))

	code, _, stderr := runProg(t, dir, "installer", "-once", "-server", dead, "-check-timeout", "2s",
		"-file", filepath.Join(state, "instructions"), "-target", filepath.Join(tmp, "target"), "-lock-dir", state)
	assert.Equal(t, 1, code, "a -once run with no usable logon server: %s", stderr)
	assert.Contains(t, stderr, "installer: ")

	missing := filepath.Join(tmp, "no-such-dir", "instructions")
	code, _, stderr = runProg(t, dir, "poller", "-file", missing, "-lock-dir", state)
	assert.Equal(t, 1, code, "an instruction file in a directory that does not exist: %s", stderr)
	assert.Contains(t, stderr, "poller: ")

	code, _, stderr = runProg(t, dir, "demo", "-quiet", "-mode", "fixed", "-installer-bin", filepath.Join(tmp, "no-such-program"))
	assert.Equal(t, 1, code, "a demo whose installer cannot start: %s", stderr)
	assert.Contains(t, stderr, "demo: fixed scenario: starting the installer")
}

// TestStoppedExitsZero: a service stopped with Ctrl-C or SIGTERM exits
// 0, and the installer's -once run that succeeds exits 0.
func TestStoppedExitsZero(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Ctrl-C or SIGTERM to send to a process")
	}
	dir := build(t)
	tmp := t.TempDir()
	share, state := filepath.Join(tmp, "share"), filepath.Join(tmp, "state")
	require.NoError(t, os.Mkdir(share, 0o755))
	require.NoError(t, os.Mkdir(state, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(share, "packages.json"), []byte(`{"packages":[{"name":"Office 97","files":1}]}`), 0o644))
	file := filepath.Join(state, "instructions")
	inst := []string{"-share", share, "-file", file, "-target", filepath.Join(tmp, "target"), "-lock-dir", state, "-install-time", "10ms", "-json"}

	code, _, stderr := runProg(t, dir, "installer", append(inst, "-once")...)
	assert.Equal(t, 0, code, stderr)

	for _, prog := range []struct {
		name string
		args []string
	}{
		{"installer", inst},
		{"poller", []string{"-file", file, "-lock-dir", state, "-interval", "50ms", "-json"}},
	} {
		for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
			cmd := exec.Command(exe(dir, prog.name), prog.args...)
			cmd.Env = cleanEnv(tmp)
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			require.NoError(t, cmd.Start())
			// Its first event says it has started (and set up its
			// signal handling).
			_, err = bufio.NewReader(stdout).ReadString('\n')
			require.NoError(t, err)
			require.NoError(t, cmd.Process.Signal(sig))
			go io.Copy(io.Discard, stdout)
			err = cmd.Wait()
			assert.NoError(t, err, "%s stopped by %v: %s", prog.name, sig, stderr.String())
		}
	}
}

// TestParentPipe: a program given the read end of a parent-death pipe
// (as the demo gives its children) exits as soon as the write end is
// closed, as it is when the demo dies. This is what ends the children
// where there is no parent-death signal; here the test plays the demo.
func TestParentPipe(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the test passes the pipe as an extra file descriptor")
	}
	dir := build(t)
	tmp := t.TempDir()
	state := filepath.Join(tmp, "state")
	require.NoError(t, os.Mkdir(state, 0o755))
	file := filepath.Join(state, "instructions")
	for _, prog := range []struct {
		name string
		args []string
	}{
		{"installer", []string{"-share", tmp, "-file", file, "-target", filepath.Join(tmp, "target"), "-lock-dir", state, "-json"}},
		{"poller", []string{"-file", file, "-lock-dir", state, "-interval", "50ms", "-json"}},
	} {
		r, w, err := os.Pipe()
		require.NoError(t, err)
		cmd := exec.Command(exe(dir, prog.name), prog.args...)
		cmd.Env = append(cleanEnv(tmp), cli.ParentPipeEnv+"=3")
		cmd.ExtraFiles = []*os.File{r}
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		r.Close()
		_, err = bufio.NewReader(stdout).ReadString('\n')
		require.NoError(t, err, "%s started", prog.name)
		go io.Copy(io.Discard, stdout)

		w.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "%s", prog.name)
			assert.Equal(t, 1, ee.ExitCode(), "%s", prog.name)
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("the %s still runs after its parent-death pipe closed", prog.name)
		}
	}
}
