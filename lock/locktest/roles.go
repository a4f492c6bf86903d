package locktest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

// A Factory returns the backend under test. dir is a scratch directory
// shared by a test and its child processes: file-based backends keep
// their files there; others may ignore it. A factory must give every
// process the same locks for the same dir. The suite closes a backend
// that implements io.Closer when the test that made it ends.
type Factory func(dir string) (lock.Backend, error)

// Main registers the child roles the suite uses, with f as their
// backend, and runs the tests (see proctest.Main). Call it from the
// TestMain of the package that calls Run.
func Main(m *testing.M, f Factory) {
	Register(f)
	proctest.Main(m)
}

// The child roles the suite registers, for tests of a package that
// calls Main or Register and start them themselves with proctest.Start
// (the arguments each takes are on its function below).
const (
	RoleHold   = "locktest-hold"   // acquire, then obey "release", "purpose P", "exit"
	RoleTry    = "locktest-try"    // one TryAcquire per "again"
	RoleHolder = "locktest-holder" // one Holder per line
	RoleCount  = "locktest-count"  // n locked increments of a counter file
	RoleIdle   = "locktest-idle"   // wait for standard input to close
)

// Register registers the child roles the suite uses, with f as their
// backend, without running anything: for a TestMain that calls
// proctest.Dispatch and m.Run itself (to start and stop a server
// around the tests, say).
func Register(f Factory) {
	factory = f
	proctest.Role(RoleHold, roleHold)
	proctest.Role(RoleTry, roleTry)
	proctest.Role(RoleHolder, roleHolder)
	proctest.Role(RoleCount, roleCount)
	proctest.Role(RoleIdle, roleIdle)
}

var factory Factory

func coordinator(dir, name string, opts ...lock.Option) (*lock.Coordinator, error) {
	b, err := factory(dir)
	if err != nil {
		return nil, err
	}
	return lock.New(name, append([]lock.Option{lock.WithBackend(b)}, opts...)...)
}

// roleHold: args dir name purpose [timeout]. Acquires (blocking, with an
// optional timeout), prints "locked TOKEN ABANDONED" or "cancelled ERR",
// then obeys commands: "release", "purpose P", "exit" (exit holding).
func roleHold(args []string, in *bufio.Scanner, out *proctest.Writer) int {
	c, err := coordinator(args[0], args[1], lock.WithPurpose(args[2]))
	if err != nil {
		return out.Fail(err)
	}
	ctx := context.Background()
	if len(args) > 3 {
		d, _ := time.ParseDuration(args[3])
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	out.Println("waiting")
	l, err := c.Acquire(ctx)
	if err != nil {
		out.Println("cancelled", err)
		// Stay alive until told to exit, so a phantom hold, if there
		// were one, would have a live process behind it.
		for in.Scan() {
			if in.Text() == "exit" {
				return 0
			}
		}
		return 0
	}
	out.Println("locked", l.Token(), l.Abandoned())
	for in.Scan() {
		cmd, arg, _ := strings.Cut(in.Text(), " ")
		switch cmd {
		case "release":
			if err := l.Release(); err != nil {
				return out.Fail(err)
			}
			out.Println("released")
		case "purpose":
			if err := l.SetPurpose(arg); err != nil {
				return out.Fail(err)
			}
			out.Println("ok")
		case "exit":
			os.Exit(0) // still holding: the OS releases the lock
		}
	}
	return 0
}

// roleTry: args dir name. One TryAcquire: prints "locked TOKEN" (and
// releases) or "busy PID PURPOSE".
func roleTry(args []string, in *bufio.Scanner, out *proctest.Writer) int {
	c, err := coordinator(args[0], args[1])
	if err != nil {
		return out.Fail(err)
	}
	for {
		l, err := c.TryAcquire(context.Background())
		var be *lock.BusyError
		switch {
		case err == nil:
			out.Println("locked", l.Token())
			if err := l.Release(); err != nil {
				return out.Fail(err)
			}
		case errors.As(err, &be):
			out.Println("busy", be.Holder.PID, be.Holder.Purpose)
		default:
			return out.Fail(err)
		}
		if !in.Scan() || in.Text() != "again" {
			return 0
		}
	}
}

// roleHolder: args dir name. For every "holder" command, prints
// "holder PID PURPOSE" or "free".
func roleHolder(args []string, in *bufio.Scanner, out *proctest.Writer) int {
	c, err := coordinator(args[0], args[1])
	if err != nil {
		return out.Fail(err)
	}
	out.Println("ready")
	for in.Scan() {
		h, err := c.Holder(context.Background())
		switch {
		case err == nil:
			out.Println("holder", h.PID, h.Purpose)
		case errors.Is(err, lock.ErrNotHeld):
			out.Println("free")
		default:
			return out.Fail(err)
		}
	}
	return 0
}

// roleCount: args dir name file n. n times: lock, read the counter in
// file, add one, write it back, unlock. Prints "tok COUNT TOKEN" for
// every increment and "done" at the end.
func roleCount(args []string, in *bufio.Scanner, out *proctest.Writer) int {
	c, err := coordinator(args[0], args[1])
	if err != nil {
		return out.Fail(err)
	}
	n, _ := strconv.Atoi(args[3])
	w := bufio.NewWriter(os.Stdout)
	for i := 0; i < n; i++ {
		l, err := c.Acquire(context.Background())
		if err != nil {
			return out.Fail(err)
		}
		b, err := os.ReadFile(args[2])
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return out.Fail(err)
		}
		v, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		v++
		if err := os.WriteFile(args[2], []byte(strconv.Itoa(v)), 0o644); err != nil {
			return out.Fail(err)
		}
		tok := l.Token()
		if err := l.Release(); err != nil {
			return out.Fail(err)
		}
		fmt.Fprintln(w, "tok", v, tok)
	}
	w.Flush()
	out.Println("done")
	return 0
}

// roleIdle prints "ready" and waits for standard input to close.
func roleIdle(args []string, in *bufio.Scanner, out *proctest.Writer) int {
	out.Println("ready")
	for in.Scan() {
	}
	return 0
}
