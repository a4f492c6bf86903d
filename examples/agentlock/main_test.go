package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/internal/spawn"
	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

// The tests run the command as a real process: the test binary
// re-executed with envCommand set is agentlock (and "agentlock -helper
// ..." a small portable program for run to run), so no toolchain is
// needed at run time and the same tests run as Windows binaries.
const (
	envCommand = "AGENTLOCK_TEST_IS_COMMAND"
	helperArg  = "-helper"
)

// roleHolder is the child role that holds a lock for the tests.
const roleHolder = "holder"

func TestMain(m *testing.M) {
	if os.Getenv(envCommand) == "1" {
		if len(os.Args) > 1 && os.Args[1] == helperArg {
			os.Exit(helper(os.Args[2:]))
		}
		os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	proctest.Role(roleHolder, holderRole)
	proctest.Main(m)
}

// holderRole holds the lock args[1] in directory args[0] with purpose
// args[2] until told "release" (then it says "released" and waits for
// end of input). It says "locked PID TOKEN" once it holds it.
func holderRole(args []string, in *bufio.Scanner, out *proctest.Writer) int {
	c, err := lock.New(args[1], lock.WithDir(args[0]), lock.WithPurpose(args[2]))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	lease, err := c.Acquire(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out.Println("locked", os.Getpid(), lease.Token())
	for in.Scan() {
		if in.Text() == "release" {
			lease.Release()
			out.Println("released")
		}
	}
	return 0
}

// helper is what the tests have run run, where a shell would not do
// on Windows:
//
//	exit N           exit with status N
//	env              print AGENTLOCK_NAME, _TOKEN and _SERVER, one a line
//	tick FILE        write its pid to FILE, then append a line every 5 ms
//	touch FILE       create FILE
func helper(args []string) int {
	switch args[0] {
	case "exit":
		n, _ := strconv.Atoi(args[1])
		return n
	case "env":
		for _, k := range []string{"AGENTLOCK_NAME", "AGENTLOCK_TOKEN", "AGENTLOCK_SERVER"} {
			fmt.Printf("%s=%s\n", k, os.Getenv(k))
		}
		return 0
	case "tick":
		f, err := os.OpenFile(args[1], os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return 1
		}
		fmt.Fprintf(f, "pid %d\n", os.Getpid())
		for {
			fmt.Fprintln(f, time.Now().UnixNano())
			time.Sleep(5 * time.Millisecond)
		}
	case "touch":
		return exitCode(os.WriteFile(args[1], nil, 0o644))
	}
	fmt.Fprintf(os.Stderr, "unknown helper %q\n", args)
	return 2
}

func exitCode(err error) int {
	if err != nil {
		return 1
	}
	return 0
}

// exe is the test binary.
func exe(t testing.TB) string {
	t.Helper()
	p, err := os.Executable()
	require.NoError(t, err)
	return p
}

// command returns agentlock with args, not yet started.
func command(t testing.TB, args ...string) *exec.Cmd {
	cmd := exec.Command(exe(t), args...)
	cmd.Env = append(os.Environ(), envCommand+"=1")
	return cmd
}

// helperArgv is the command line of helper with args, for run.
func helperArgv(t testing.TB, args ...string) []string {
	return append([]string{exe(t), helperArg}, args...)
}

// result is what a finished agentlock said.
type result struct {
	stdout, stderr string
	code           int
	elapsed        time.Duration
}

// agentlock runs agentlock with args and stdin to the end.
func agentlock(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	start := time.Now()
	cmd, err := spawn.Start(func() (*exec.Cmd, error) {
		cmd := command(t, args...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errb
		cmd.WaitDelay = 5 * time.Second // a process left holding the output must not hang the test
		return cmd, nil
	})
	if err != nil {
		t.Fatalf("agentlock %q: %v", args, err)
	}
	cmd.Wait()
	r := result{stdout: out.String(), stderr: errb.String(), elapsed: time.Since(start)}
	r.code = cmd.ProcessState.ExitCode()
	t.Logf("agentlock %q: status %d in %v, stderr %q", args, r.code, r.elapsed.Round(time.Millisecond), r.stderr)
	return r
}

// holder is a Go program holding a lock.
type holder struct {
	c     *proctest.Child
	pid   int
	token uint64
}

func startHolder(t *testing.T, dir, name, purpose string) *holder {
	t.Helper()
	c := proctest.Start(t, roleHolder, dir, name, purpose)
	f := strings.Fields(c.Expect("locked", 20*time.Second))
	pid, _ := strconv.Atoi(f[1])
	tok, _ := strconv.ParseUint(f[2], 10, 64)
	return &holder{c: c, pid: pid, token: tok}
}

func (h *holder) release(t *testing.T) {
	h.c.Send("release")
	h.c.Expect("released", 20*time.Second)
}

// lockDir returns a new lock directory.
func lockDir(t *testing.T) string {
	d := filepath.Join(proctest.TempDir(t), "lock")
	require.NoError(t, os.Mkdir(d, 0o755))
	return d
}

// coordinator returns an in-process coordinator of name in dir.
func coordinator(t *testing.T, dir, name string) *lock.Coordinator {
	c, err := lock.New(name, lock.WithDir(dir))
	require.NoError(t, err)
	return c
}

// started is an agentlock running in the background.
type started struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	errb *lockedBuffer
	done chan struct{}
	code int
}

// start starts agentlock with args in the background; it is killed at
// the end of the test if still running.
func start(t *testing.T, args ...string) *started {
	t.Helper()
	s := &started{out: &lockedBuffer{}, errb: &lockedBuffer{}, done: make(chan struct{})}
	var err error
	s.cmd, err = spawn.Start(func() (*exec.Cmd, error) {
		cmd := command(t, args...)
		cmd.Stdout, cmd.Stderr = s.out, s.errb
		cmd.WaitDelay = 5 * time.Second
		return cmd, nil
	})
	require.NoError(t, err)
	go func() {
		s.cmd.Wait()
		s.code = s.cmd.ProcessState.ExitCode()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
	})
	return s
}

// wait waits for s to end and returns its status.
func (s *started) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-s.done:
		t.Logf("agentlock %q: status %d, stderr %q", s.cmd.Args[1:], s.code, s.errb.String())
		return s.code
	case <-time.After(timeout):
		t.Fatalf("agentlock %q did not end within %v; stderr %q", s.cmd.Args[1:], timeout, s.errb.String())
		return 0
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// eventually polls cond every few milliseconds for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(2 * time.Millisecond) // what it polls (a buffer, a file) has no event to wait on
	}
}
