package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/logon"
)

const runUsage = `usage: agentlock run [flags] NAME [--] COMMAND [ARGS...]

Take the lock NAME, run COMMAND, and release the lock when it ends, like
flock(1), but holder-aware and on every platform. The lock is published
with the purpose -purpose (default: the command line), which "agentlock
who" and every poller show.

With -check, the servers are validated with package logon before the lock
is taken, in order (failover): HTTP(S) URLs must answer 2xx, HOST:PORT must
accept a TCP connection, anything else is a directory that must be
listable. The lock is never taken while a server is being checked. The
command sees the environment variables

  AGENTLOCK_NAME    the lock's name
  AGENTLOCK_TOKEN   the lease's fencing token (a decimal number)
  AGENTLOCK_SERVER  the -check value that passed (only with -check)

-w bounds the checks and the wait for the lock together.

SIGINT, SIGTERM and SIGHUP are passed on to the command (on Windows the
command gets console events from the console itself). Ctrl-C at a terminal
signals the command directly as well, so it may see SIGINT twice. A signal
that arrives while waiting for the lock ends the wait.

If agentlock itself is killed, even with kill -9, nothing of the command
goes on running without the lock. The command runs under a guard process
(agentlock itself) that sees agentlock die and kills the command and
every process it started with SIGKILL; on Windows the command and every
process it starts run in a job object that ends with agentlock. When the
command ends, whatever it left running is killed the same way before the
lock is released. On Linux the guard is a child subreaper and finds
every descendant, even one in a session of its own; on macOS and the BSDs
it kills the command's process group, so a process that leaves the group
(setsid, say) is out of reach, and a command whose standard input is a
terminal stays in the terminal's group, where only its own process is
covered. The system releases the lock and the guard kills the command as
parts of the same exit of agentlock, so the command is stopped within
moments of the release, not before it.

If the lock is lost while the command runs (its lock file was removed or
replaced, by a cleaner say, which Linux, macOS and the BSDs report at
once), another process may take it: the command gets SIGTERM, and after
3 s it and everything it started are killed; agentlock says so on
standard error and exits 4.

Exit status: the command's; 128+N if it was killed by signal N (as
shells report it); -E (default 1) if the lock is held (-n) or the wait
timed out (-w), with the holder on standard error; 2 on a usage error;
-C (default 3) if no -check server is valid; 4 if the lock was lost while
the command ran; 125 if agentlock failed otherwise; 126 if the command
could not be started, 127 if it was not found; 128+N if a signal N ended
the wait for the lock.

Flags:
`

// runConfig is a parsed run command line.
type runConfig struct {
	name         string
	argv         []string
	noWait       bool
	wait         time.Duration // 0: no limit
	conflict     int
	noServer     int
	purpose      string
	checks       repeated
	checkTimeout time.Duration
	backend      backendFlags
	failed       int // exit status of errors that are not conflicts
}

func cmdRun(e *env, args []string) int {
	cfg := runConfig{failed: exitFailed}
	f := newFlags(e, "run", runUsage)
	f.BoolVar(&cfg.noWait, "n", false, "fail at once if the lock is held")
	f.DurationVar(&cfg.wait, "w", 0, "wait at most `DURATION` for the lock (default: no limit)")
	f.IntVar(&cfg.conflict, "E", exitNo, "exit `CODE` when the lock is held (-n) or the wait times out (-w)")
	f.IntVar(&cfg.noServer, "C", exitCheck, "exit `CODE` when no -check server is valid")
	f.StringVar(&cfg.purpose, "purpose", "", "what the holder says it is doing (default: the command line)")
	f.Var(&cfg.checks, "check", "validate this logon `SERVER` (URL, HOST:PORT or directory) before locking; repeat for failover")
	f.DurationVar(&cfg.checkTimeout, "check-timeout", logon.DefaultTimeout, "bound on each server's check")
	cfg.backend.register(f)
	if st := f.parse(args); st >= 0 {
		return st
	}
	if msg := cfg.validate(f); msg != "" {
		return f.usageError("%s", msg)
	}
	return cfg.run(f)
}

// validate checks the command line and fills name and argv. It returns
// a usage message, or "".
func (cfg *runConfig) validate(f *flags) string {
	if msg := cfg.backend.check(f); msg != "" {
		return msg
	}
	switch {
	case cfg.noWait && f.set("w"):
		return "flags -n and -w exclude each other"
	case f.set("w") && cfg.wait <= 0:
		return fmt.Sprintf("invalid value %v for flag -w: must be positive", cfg.wait)
	case cfg.conflict < 0 || cfg.conflict > 255:
		return fmt.Sprintf("invalid value %d for flag -E: must be 0 to 255", cfg.conflict)
	case cfg.noServer < 0 || cfg.noServer > 255:
		return fmt.Sprintf("invalid value %d for flag -C: must be 0 to 255", cfg.noServer)
	case f.set("C") && len(cfg.checks) == 0:
		return "flag -C needs -check"
	case cfg.checkTimeout < 0:
		return "invalid value for flag -check-timeout: must not be negative"
	}
	rest := f.Args()
	if len(rest) == 0 {
		return "missing NAME"
	}
	cfg.name, rest = rest[0], rest[1:]
	if len(rest) > 0 && rest[0] == "--" {
		rest = rest[1:]
	}
	if len(rest) == 0 {
		return "missing COMMAND"
	}
	cfg.argv = rest
	if !f.set("purpose") {
		cfg.purpose = truncate(strings.ToValidUTF8(strings.ReplaceAll(strings.Join(rest, " "), "\x00", ""), "?"), 256)
	}
	return ""
}

// truncate cuts s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func (cfg *runConfig) run(f *flags) int {
	var opts []lock.Option
	var v *logon.Validation
	if len(cfg.checks) > 0 {
		list, err := checkList(cfg.checks, cfg.checkTimeout)
		if err != nil {
			return f.usageError("-check: %v", err)
		}
		v = list.Validation()
		opts = append(opts, lock.WithPrecondition(v.Check))
	}
	c, st := cfg.backend.coordinator(f, cfg.name, exitFailed, lock.WithPurpose(cfg.purpose))
	if st >= 0 {
		return st
	}

	sig := newRelay()
	defer sig.stop()
	lease, st := cfg.acquire(f, c, sig, opts)
	if st >= 0 {
		return st
	}
	var lost atomic.Bool // the lock was lost while the command ran
	defer func() {
		if err := lease.Release(); err != nil && !(lost.Load() && errors.Is(err, lock.ErrLost)) {
			fmt.Fprintf(f.e.stderr, "agentlock run: %v\n", err)
		}
	}()
	if s := sig.received(); s != nil {
		return signalStatus(s) // a signal came in just as the lock was taken
	}

	env := append(os.Environ(), "AGENTLOCK_NAME="+cfg.name,
		"AGENTLOCK_TOKEN="+strconv.FormatUint(lease.Token(), 10))
	if v != nil {
		if srv, ok := v.Server(); ok {
			env = append(env, "AGENTLOCK_SERVER="+srv.Name)
		}
	}
	cmd := exec.Command(cfg.argv[0], cfg.argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = f.e.stdin, f.e.stdout, f.e.stderr
	cmd.Env = env
	stopped := make(chan struct{})
	defer close(stopped)
	ps, err := runChild(cmd, func(p *os.Process, kill func()) {
		sig.forwardTo(p)
		go stopOnLoss(lease.Lost(), stopped, &lost, p, kill)
	})
	if err != nil {
		return f.fail(startStatus(err), err)
	}
	if lost.Load() {
		fmt.Fprintf(f.e.stderr, "agentlock run: lost the lock %s (its lock file was removed or replaced): stopped the command\n", cfg.name)
		return exitLost
	}
	return exitStatus(ps)
}

// lostGrace is how long a command whose lock was lost has to end after
// SIGTERM before it is killed.
const lostGrace = 3 * time.Second

// stopOnLoss stops the command p if lost closes before stopped: SIGTERM
// (on Windows, which never loses a file lock this way, at once kill),
// then after lostGrace kill, which ends every process it started.
func stopOnLoss(lost, stopped <-chan struct{}, flag *atomic.Bool, p *os.Process, kill func()) {
	select {
	case <-lost:
	case <-stopped:
		return
	}
	flag.Store(true)
	terminate(p, kill)
	t := time.NewTimer(lostGrace)
	defer t.Stop()
	select {
	case <-t.C:
		kill()
	case <-stopped:
	}
}

// acquire takes the lock as the flags say. It returns -1 with the
// lease, or the status to exit with.
func (cfg *runConfig) acquire(f *flags, c *lock.Coordinator, sig *relay, opts []lock.Option) (*lock.Lease, int) {
	ctx := sig.ctx
	if cfg.wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.wait)
		defer cancel()
	}
	var lease *lock.Lease
	var err error
	if cfg.noWait {
		lease, err = c.TryAcquire(ctx, opts...)
	} else {
		lease, err = c.Acquire(ctx, opts...)
	}
	if err == nil {
		return lease, -1
	}
	if s := sig.received(); s != nil {
		return nil, signalStatus(s)
	}
	// A failed precondition and a wait that timed out may both carry a
	// deadline, and the timed-out wait matches *BusyError too (it
	// carries the last holder seen): tell them apart in this order.
	var busy *lock.BusyError
	switch {
	case errors.Is(err, lock.ErrPrecondition):
		fmt.Fprintf(f.e.stderr, "agentlock %s: no valid logon server, %s not locked: %v\n", f.cmd, cfg.name, err)
		return nil, cfg.noServer
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(f.e.stderr, "agentlock %s: timed out after %v waiting for %s, %s\n", f.cmd, cfg.wait, cfg.name, holderNow(c))
		return nil, cfg.conflict
	case errors.As(err, &busy):
		fmt.Fprintf(f.e.stderr, "agentlock %s: %s is held by %s\n", f.cmd, cfg.name, describe(busy.Holder, time.Now()))
		return nil, cfg.conflict
	}
	return nil, f.fail(cfg.failed, err)
}

// holderNow says who holds c's lock now, for a message.
func holderNow(c *lock.Coordinator) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	h, err := c.Holder(ctx)
	switch {
	case errors.Is(err, lock.ErrNotHeld):
		return "which is free now"
	case err != nil:
		return fmt.Sprintf("held by an unknown holder (%v)", err)
	}
	return "held by " + describe(h, time.Now())
}

// startStatus is the exit status for a command that could not start,
// as shells use them.
func startStatus(err error) int {
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return exitNoCmd
	}
	return exitNoExec
}

// signalStatus is the exit status for a wait ended by signal s.
func signalStatus(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return exitFailed
}

// exitStatus is the status a shell would report for the command.
func exitStatus(ps *os.ProcessState) int {
	if s, ok := termSignal(ps); ok {
		return 128 + s
	}
	return ps.ExitCode()
}

// A relay catches the signals agentlock passes on. Before the command
// runs, the first one cancels ctx (ending the wait for the lock); once
// it runs, they are forwarded to it.
type relay struct {
	ctx    context.Context
	cancel context.CancelFunc
	ch     chan os.Signal
	done   chan struct{}

	mu    sync.Mutex
	first os.Signal
	child *os.Process
}

func newRelay() *relay {
	r := &relay{ch: make(chan os.Signal, 8), done: make(chan struct{})}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	signal.Notify(r.ch, forwarded...)
	go r.loop()
	return r
}

func (r *relay) loop() {
	for {
		select {
		case s := <-r.ch:
			r.mu.Lock()
			if r.child != nil {
				forward(r.child, s)
			} else if r.first == nil {
				r.first = s
				r.cancel()
			}
			r.mu.Unlock()
		case <-r.done:
			return
		}
	}
}

// forwardTo makes the relay pass signals on to p from now on, and
// passes on one that came in after the last look at received.
func (r *relay) forwardTo(p *os.Process) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.child = p
	if r.first != nil {
		forward(p, r.first)
	}
}

// received returns the signal that arrived before the command started,
// or nil.
func (r *relay) received() os.Signal {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first
}

func (r *relay) stop() {
	signal.Stop(r.ch)
	close(r.done)
	r.cancel()
}
