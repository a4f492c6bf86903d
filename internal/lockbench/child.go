//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd || windows

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/agentlock/agentlock/internal/spawn"
)

// child runs commands from stdin:
//
//   - "lock", "unlock";
//   - "lockat": lock, unlock, print the stamp (ns) at which it held;
//   - "cpu": lock, unlock, print the CPU time and wall time of the wait;
//   - "cancel DUR": lock with a timeout, print how late it returned;
//   - "loop START END": from START to END (wall clock, ns) lock and
//     unlock in a loop, print the count.
func child(kind, dir string) {
	im := newImpl(kind, dir)
	in := bufio.NewScanner(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	say := func(a ...any) { fmt.Fprintln(out, a...); out.Flush() }
	say("ready")
	for in.Scan() {
		cmd, arg, _ := strings.Cut(in.Text(), " ")
		switch cmd {
		case "lock":
			check(im.lock(context.Background()))
			say("locked")
		case "unlock":
			check(im.unlock())
			say("unlocked")
		case "lockat":
			say("waiting")
			check(im.lock(context.Background()))
			t := stamp()
			check(im.unlock())
			say(t)
		case "cpu":
			a := cpuTime()
			say("waiting")
			start := time.Now()
			check(im.lock(context.Background()))
			wall := time.Since(start)
			cpu := cpuTime() - a
			check(im.unlock())
			say(int64(cpu), int64(wall))
		case "cancel":
			childCancel(im, arg, say)
		case "loop":
			say(childLoop(im, arg))
		default:
			check(fmt.Errorf("unknown command %q", cmd))
		}
	}
}

// childCancel waits for the lock with the timeout arg and says how
// late after the deadline the wait returned (in ns), or "locked".
func childCancel(im impl, arg string, say func(...any)) {
	d, err := time.ParseDuration(arg)
	check(err)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	dl, _ := ctx.Deadline()
	say("waiting")
	err = im.lock(ctx)
	late := time.Since(dl)
	if err == nil {
		check(im.unlock())
		say("locked")
		return
	}
	say(int64(late))
}

// childLoop waits for the wall-clock start in arg ("START END", Unix
// ns), locks and unlocks until END, and returns how many times.
func childLoop(im impl, arg string) int {
	a, b, _ := strings.Cut(arg, " ")
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	check(err1)
	check(err2)
	time.Sleep(time.Until(time.Unix(0, start)))
	n := 0
	for ; time.Now().UnixNano() < end; n++ {
		check(im.lock(context.Background()))
		check(im.unlock())
	}
	return n
}

// A proc is a child process of the given kind.
type proc struct {
	cmd *exec.Cmd
	in  *bufio.Writer
	out *bufio.Scanner
}

func startChild(kind, dir string) *proc {
	exe, err := os.Executable()
	check(err)
	var w io.WriteCloser
	var r io.ReadCloser
	cmd, err := spawn.Start(func() (*exec.Cmd, error) {
		cmd := exec.Command(exe, "-child", kind, "-dir", dir)
		cmd.Stderr = os.Stderr
		var err error
		if w, err = cmd.StdinPipe(); err != nil {
			return nil, err
		}
		r, err = cmd.StdoutPipe()
		return cmd, err
	})
	check(err)
	p := &proc{cmd: cmd, in: bufio.NewWriter(w), out: bufio.NewScanner(r)}
	p.expect("ready")
	return p
}

func (p *proc) pid() int      { return p.cmd.Process.Pid }
func (p *proc) send(s string) { fmt.Fprintln(p.in, s); p.in.Flush() }
func (p *proc) line() string {
	if !p.out.Scan() {
		check(fmt.Errorf("child exited: %v", p.out.Err()))
	}
	return p.out.Text()
}
func (p *proc) int() int64 {
	n, err := strconv.ParseInt(p.line(), 10, 64)
	check(err)
	return n
}
func (p *proc) expect(s string) {
	if l := p.line(); l != s {
		check(fmt.Errorf("child said %q, want %q", l, s))
	}
}
func (p *proc) close() { p.cmd.Process.Kill(); p.cmd.Wait() }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "lockbench:", err)
		os.Exit(1)
	}
}

func freshDir() string {
	d, err := os.MkdirTemp("", "lockbench")
	check(err)
	return d
}
