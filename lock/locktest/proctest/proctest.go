// Package proctest runs child processes for multi-process tests by
// re-executing the test binary in a named role.
//
// A test package registers roles and hands its TestMain to Main:
//
//	func TestMain(m *testing.M) {
//		proctest.Role("holder", holderRole)
//		proctest.Main(m)
//	}
//
// A test then starts children with Start. A child talks to its parent
// in lines: it reads commands from standard input (Child.Send) and
// writes replies to standard output, which the parent reads with
// Child.Expect. Everything the child writes to standard error is passed
// to the test log. Children are killed when the test ends.
package proctest

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentlock/agentlock/internal/spawn"
)

const envRole = "AGENTLOCK_PROCTEST_ROLE"

// A RoleFunc is the body of a child process. It gets the arguments
// given to Start, reads commands from in and writes replies to out
// (both line oriented), and returns the process's exit code.
type RoleFunc func(args []string, in *bufio.Scanner, out *Writer) int

var roles = map[string]RoleFunc{}

// Role registers a child role. Call it before Main.
func Role(name string, f RoleFunc) { roles[name] = f }

// Main runs the role named in the environment if this process is a
// child, and the tests otherwise. It does not return.
func Main(m *testing.M) {
	Dispatch()
	os.Exit(m.Run())
}

// Dispatch runs the role named in the environment and exits if this
// process is a child; otherwise it returns at once. A TestMain that
// must set something up for the tests (a server) and tear it down
// afterwards calls Dispatch first and then m.Run itself:
//
//	func TestMain(m *testing.M) {
//		proctest.Role("holder", holderRole)
//		proctest.Dispatch()
//		stop := startServer()
//		code := m.Run()
//		stop()
//		os.Exit(code)
//	}
func Dispatch() {
	if name := os.Getenv(envRole); name != "" {
		f, ok := roles[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "proctest: unknown role %q\n", name)
			os.Exit(2)
		}
		var args []string
		if a := os.Getenv(envRole + "_ARGS"); a != "" {
			args = strings.Split(a, "\x1f")
		}
		in := bufio.NewScanner(os.Stdin)
		os.Exit(f(args, in, &Writer{w: os.Stdout}))
	}
}

// A Writer writes reply lines; it is safe for concurrent use.
type Writer struct {
	mu sync.Mutex
	w  io.Writer
}

// Println writes one line made of the operands separated by spaces.
func (w *Writer) Println(a ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fmt.Fprintln(w.w, a...)
}

// Fail writes "error ERR", with err's text on one line, and returns
// 1: the end of a role that failed, as in "return out.Fail(err)".
func (w *Writer) Fail(err error) int {
	w.Println("error", strings.ReplaceAll(err.Error(), "\n", " "))
	return 1
}

// A Child is a running child process.
type Child struct {
	t     testing.TB
	Role  string
	Cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan struct{}
	err   error // exit status, valid after done is closed
}

// Start starts the test binary as a child in role, with args. Under
// Wine, a launch that dies in Wine's loader before the program runs
// (CreateProcess fails with ERROR_INTERNAL_ERROR, about one launch in
// 200) is tried again, up to three launches.
func Start(t testing.TB, role string, args ...string) *Child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("proctest: %v", err)
	}
	var stdin io.WriteCloser
	var stdout io.ReadCloser
	cmd, err := spawn.Start(func() (*exec.Cmd, error) {
		cmd := Command(exe, role, args...)
		cmd.Stderr = &logWriter{t: t, prefix: role + ": "}
		var err error
		if stdin, err = cmd.StdinPipe(); err != nil {
			return nil, err
		}
		stdout, err = cmd.StdoutPipe()
		return cmd, err
	})
	if err != nil {
		t.Fatalf("proctest: start %s: %v", role, err)
	}
	c := &Child{t: t, Role: role, Cmd: cmd, stdin: stdin, lines: make(chan string, 1024), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		c.err = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.Kill()
		<-c.done
	})
	return c
}

// Command returns a command that runs the test binary exe in role
// with args, for tests that need to start it themselves (for example
// as another user).
func Command(exe, role string, args ...string) *exec.Cmd {
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envRole+"="+role, envRole+"_ARGS="+strings.Join(args, "\x1f"))
	return cmd
}

// PID returns the child's process id.
func (c *Child) PID() int { return c.Cmd.Process.Pid }

// Send writes one command line to the child's standard input.
func (c *Child) Send(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		c.t.Fatalf("proctest: send %q to %s: %v", line, c.Role, err)
	}
}

// Expect waits up to timeout for the next line the child writes and
// fails the test unless it starts with prefix. It returns the line.
func (c *Child) Expect(prefix string, timeout time.Duration) string {
	c.t.Helper()
	line, ok := c.Next(timeout)
	if !ok {
		c.t.Fatalf("proctest: %s: no line starting with %q within %v", c.Role, prefix, timeout)
	}
	if !strings.HasPrefix(line, prefix) {
		c.t.Fatalf("proctest: %s: got %q, want a line starting with %q", c.Role, line, prefix)
	}
	return line
}

// Next waits up to timeout for the next line. ok is false on timeout or
// if the child closed its output.
func (c *Child) Next(timeout time.Duration) (line string, ok bool) {
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	select {
	case line, ok = <-c.lines:
		return line, ok
	case <-tm.C:
		return "", false
	}
}

// Lines returns the channel of lines the child writes.
func (c *Child) Lines() <-chan string { return c.lines }

// CloseStdin closes the child's standard input.
func (c *Child) CloseStdin() { c.stdin.Close() }

// Kill kills the child with SIGKILL (TerminateProcess on Windows); it
// cannot clean up.
func (c *Child) Kill() {
	select {
	case <-c.done:
	default:
		c.Cmd.Process.Kill()
	}
}

// Wait waits up to timeout for the child to exit and returns its exit
// error (nil for status 0). It fails the test on timeout.
func (c *Child) Wait(timeout time.Duration) error {
	c.t.Helper()
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	select {
	case <-c.done:
		return c.err
	case <-tm.C:
		c.t.Fatalf("proctest: %s did not exit within %v", c.Role, timeout)
		return nil
	}
}

// Done returns a channel closed when the child has exited.
func (c *Child) Done() <-chan struct{} { return c.done }

type logWriter struct {
	t      testing.TB
	prefix string
	mu     sync.Mutex
	buf    []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			break
		}
		w.t.Log(w.prefix + string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// TempDir returns a new temporary directory for the test, like
// t.TempDir, and removes it when the test ends. Unlike t.TempDir it
// removes the directory's contents one by one, deepest first, before
// the directory itself: Wine 8 cannot remove a non-empty directory
// (os.RemoveAll fails there with "unlinkat: Invalid function"), and the
// Windows tests run under Wine. A failure to clean up is logged, not
// fatal: the files are in the system's temporary directory.
func TempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "agentlock-test-")
	if err != nil {
		t.Fatalf("proctest: %v", err)
	}
	t.Cleanup(func() {
		if err := removeTree(dir); err != nil {
			t.Logf("proctest: removing %s: %v", dir, err)
		}
	})
	return dir
}

func removeTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var first error
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() && e.Type()&fs.ModeSymlink == 0 {
			err = removeTree(p)
		} else {
			err = os.Remove(p)
		}
		if err != nil && first == nil {
			first = err
		}
	}
	if err := os.Remove(dir); err != nil && first == nil {
		first = err
	}
	return first
}
