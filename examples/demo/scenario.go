package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/agentlock/agentlock/examples/internal/cli"
	"github.com/agentlock/agentlock/examples/internal/installer"
	"github.com/agentlock/agentlock/examples/internal/instr"
	"github.com/agentlock/agentlock/examples/internal/pollerapp"
	"github.com/agentlock/agentlock/examples/internal/report"
	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/guarded"
)

// lockName is the lock the installer and the poller share.
const lockName = "pcm-install"

// The catalog: three packages at first, two more once the server is
// back. The last one is the one the installer is killed installing.
var (
	firstPackages = []instr.CatalogEntry{{Name: "Office 97", Files: 4}, {Name: "Netscape Communicator 4", Files: 3}, {Name: "Acrobat Reader 3", Files: 2}}
	morePackages  = []instr.CatalogEntry{{Name: "WinZip 6.3", Files: 2}, {Name: "Quake", Files: 3}}
)

// result is one scenario's outcome, for the summary.
type result struct {
	Mode               string         `json:"mode"`
	Busy               int            `json:"busy"`     // busy messages the poller showed
	Spurious           int            `json:"spurious"` // ... while the holder was not installing
	ValidationFailures int            `json:"validation_failures"`
	FailuresLocked     int            `json:"validation_failures_locked"` // ... with the lock held
	Installs           int            `json:"installs"`                   // installs completed
	InstalledEvents    map[string]int `json:"installed_events"`           // per package
	Recorded           map[string]int `json:"recorded_installs"`          // per package, in the guarded file
	AbandonedBy        string         `json:"abandoned_by"`               // which program's lease found the killed installer dead
	Recovering         int            `json:"recovering"`                 // packages the installer found left "installing"
	Interrupted        bool           `json:"interrupted_seen"`           // the poller reported the interrupted install
	Recovered          bool           `json:"recovered"`                  // the killed install was redone and counted once
	Verified           bool           `json:"verified"`
	VerifyError        string         `json:"verify_error,omitempty"`
	PIDs               []int          `json:"pids"` // every child process
	Seconds            float64        `json:"seconds"`
}

// demo plays one scenario.
type demo struct {
	o      options
	p      params
	mode   string
	stdout io.Writer
	stderr io.Writer
	out    *report.Printer // the demo's own narration

	events   chan report.Event
	fam      *family
	children []*child
	res      result

	seen      map[string]bool // "PROG EVENT" and "PROG EVENT PACKAGE" of every event so far
	shownDone int             // packages the poller last showed done

	pendingInst []report.Event // installer events held back until the run shows whether it is idle
	skipRelease bool
}

func newDemo(o options, p params, mode string, stdout, stderr io.Writer) *demo {
	return &demo{
		o: o, p: p, mode: mode, stdout: stdout, stderr: stderr,
		out:    report.NewPrinter(stdout, "demo", o.json, o.color),
		events: make(chan report.Event, 1024),
		seen:   map[string]bool{},
		res:    result{Mode: mode, InstalledEvents: map[string]int{}, Recorded: map[string]int{}},
	}
}

// A child is a running installer or poller.
type child struct {
	role string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // after done
}

// start runs role with args as a separate process: this binary again
// with $AGENTLOCK_DEMO_ROLE set, or the program given with
// -installer-bin / -poller-bin. Its JSON events arrive on d.events.
func (d *demo) start(role string, args ...string) (*child, error) {
	bin := d.o.installerBin
	if role == rolePoller {
		bin = d.o.pollerBin
	}
	env := os.Environ()
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		bin = exe
		env = append(env, envRole+"="+role)
	}
	cmd, err := d.fam.command(bin, append(args, "-json"), env)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = &prefixWriter{w: d.stderr, prefix: role + ": "}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the %s: %w", role, err)
	}
	c := &child{role: role, cmd: cmd, done: make(chan struct{})}
	d.children = append(d.children, c)
	d.res.PIDs = append(d.res.PIDs, cmd.Process.Pid)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev report.Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				ev = report.Event{Time: time.Now(), Prog: role, PID: cmd.Process.Pid, Event: "output", Msg: sc.Text()}
			}
			d.events <- ev
		}
		io.Copy(io.Discard, stdout)
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// play runs the scenario and returns its result. Whatever happens, it
// leaves no process running and no file behind (see family for how
// that holds when the demo is killed).
func (d *demo) play(ctx context.Context) (res result, err error) {
	began := time.Now()
	fam, err := newFamily(d.stderr)
	if err != nil {
		return d.res, err
	}
	d.fam = fam
	srv, err := newLogonServer(instr.Catalog{Packages: firstPackages})
	if err != nil {
		fam.close()
		return d.res, err
	}
	defer func() {
		d.reapAll()
		srv.close()
		if rerr := fam.close(); rerr != nil && err == nil {
			err = rerr
		}
		d.res.Seconds = time.Since(began).Seconds()
		res = d.res
	}()
	sc, err := d.newScene(srv)
	if err != nil {
		return d.res, err
	}
	steps := []func(context.Context, *scene) error{
		d.startBoth, d.silenceServer, d.restoreServer, d.killInstaller, d.restartInstaller, d.finish,
	}
	for _, step := range steps {
		if err := step(ctx, sc); err != nil {
			return d.res, err
		}
	}
	return d.res, nil
}

// A scene is what the steps of one scenario share: the server, the
// files, the installer's arguments and the children running.
type scene struct {
	srv                             *logonServer
	file, lockDir, stateDir, target string
	instArgs                        []string
	poller, inst                    *child
	victim                          string // the package the installer is killed installing
}

// newScene makes the scenario's directories below the family's and
// the installer's arguments.
func (d *demo) newScene(srv *logonServer) (*scene, error) {
	root := d.fam.dir
	sc := &scene{
		srv:      srv,
		lockDir:  filepath.Join(root, "lock"),
		stateDir: filepath.Join(root, "state"),
		target:   filepath.Join(root, "target"),
		victim:   morePackages[len(morePackages)-1].Name,
	}
	for _, dir := range []string{sc.lockDir, sc.stateDir} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, err
		}
	}
	sc.file = filepath.Join(sc.stateDir, "instructions")
	p := d.p
	sc.instArgs = []string{"-server", srv.URL, "-file", sc.file, "-target", sc.target, "-lock-dir", sc.lockDir, "-lock", lockName,
		"-install-time", p.install.String(), "-check-timeout", p.checkTimeout.String(), "-interval", p.instInterval.String()}
	if d.mode == "legacy" {
		sc.instArgs = append(sc.instArgs, "-legacy")
	}
	return sc, nil
}

// startBoth is step 1: the poller, then the installer service, which
// installs the first packages.
func (d *demo) startBoth(ctx context.Context, sc *scene) error {
	order := "validate first, lock second"
	if d.mode == "legacy" {
		order = "LEGACY order: lock first, validate second"
	}
	d.step("=== %s scenario (%s) ===", d.mode, order)
	d.step("1/6 logon server %s offers %s; starting the poller and the installer service", sc.srv.URL, report.List(names(firstPackages)))
	var err error
	sc.poller, err = d.start(rolePoller, "-file", sc.file, "-lock-dir", sc.lockDir, "-lock", lockName,
		"-interval", d.p.pollInterval.String(), "-notify", d.o.notify)
	if err != nil {
		return err
	}
	if err := d.until(ctx, "the poller to start", d.seenFunc(rolePoller+" "+pollerapp.EvStart)); err != nil {
		return err
	}
	if sc.inst, err = d.start(roleInstaller, sc.instArgs...); err != nil {
		return err
	}
	last := firstPackages[len(firstPackages)-1].Name
	return d.until(ctx, "the installer to install "+last, d.seenFunc(roleInstaller+" "+installer.EvInstalling+" "+last))
}

// silenceServer is step 2: the logon server hangs until the
// installer's checks time out, twice.
func (d *demo) silenceServer(ctx context.Context, sc *scene) error {
	d.step("2/6 the logon server stops answering (a dead link: requests hang until the installer's %v timeout)", d.p.checkTimeout)
	sc.srv.setDown(true)
	failures := d.res.ValidationFailures
	return d.until(ctx, "two failed validations", func() bool { return d.res.ValidationFailures >= failures+2 })
}

// restoreServer is step 3: the server answers again, with more
// packages, and the installer starts on the last of them.
func (d *demo) restoreServer(ctx context.Context, sc *scene) error {
	d.step("3/6 the logon server is back, and offers %s too", report.List(names(morePackages)))
	sc.srv.setCatalog(instr.Catalog{Packages: allPackages()})
	sc.srv.setDown(false)
	if err := d.until(ctx, "the installer to install "+sc.victim, d.seenFunc(roleInstaller+" "+installer.EvInstalling+" "+sc.victim)); err != nil {
		return err
	}
	// Into the install, so that the kill lands in its middle.
	return d.sleep(ctx, d.p.install*2/5)
}

// killInstaller is step 4: kill -9 in the middle of an install, and
// the poller's next look.
func (d *demo) killInstaller(ctx context.Context, sc *scene) error {
	d.step("4/6 kill -9 the installer (pid %d) in the middle of installing %s", sc.inst.cmd.Process.Pid, sc.victim)
	sc.inst.cmd.Process.Kill()
	if err := d.waitExit(ctx, sc.inst); err != nil {
		return err
	}
	// The next process to take the lock gets a lease that says
	// Abandoned: the restarted installer (the poller only watches). The
	// poller's next look finds the lock free and the package marked
	// "installing", and says it was interrupted. (The demo waits for
	// that look, so that the poller sees the lock free between the two
	// installers, as it would with a service manager's restart delay.)
	return d.until(ctx, "the poller to notice the interrupted install", d.seenFunc(rolePoller+" "+pollerapp.EvInterrupted+" "+sc.victim))
}

// restartInstaller is step 5: one more installer run, which redoes the
// interrupted install, and the poller showing every package done.
func (d *demo) restartInstaller(ctx context.Context, sc *scene) error {
	d.step("5/6 the service manager restarts the installer (one run, -once): it finds %s marked installing and installs it again", sc.victim)
	inst2, err := d.start(roleInstaller, append(sc.instArgs, "-once")...)
	if err != nil {
		return err
	}
	if err := d.waitExit(ctx, inst2); err != nil {
		return err
	}
	if inst2.err != nil {
		return fmt.Errorf("the restarted installer failed: %v", inst2.err)
	}
	all := len(allPackages())
	return d.until(ctx, "the poller to show every package done", func() bool { return d.shownDone == all })
}

// finish is step 6: the poller stops, and the files are checked.
func (d *demo) finish(ctx context.Context, sc *scene) error {
	d.step("6/6 stopping the poller, checking the instruction file")
	stopChild(sc.poller)
	if err := d.waitExit(ctx, sc.poller); err != nil {
		return err
	}
	d.verify(ctx, sc.file, sc.lockDir, sc.stateDir, sc.target)
	return nil
}

// verify checks the end state: the guarded file reads back (checksum
// and all), every package is done and recorded installed exactly once,
// its files are in place, no temporary file is left, and the lock is
// free (all checked by a child process: see checkFiles), and the
// installer reported every package installed once.
func (d *demo) verify(ctx context.Context, file, lockDir, stateDir, target string) {
	fail := func(format string, args ...any) {
		d.res.VerifyError = fmt.Sprintf(format, args...)
		d.step("verification FAILED: %s", d.res.VerifyError)
	}
	st, err := d.checkFilesInChild(ctx, file, lockDir, stateDir, target)
	if err != nil {
		fail("%v", err)
		return
	}
	maps.Copy(d.res.Recorded, st.Recorded)
	if st.Error != "" {
		fail("%s", st.Error)
		return
	}
	for _, e := range allPackages() {
		if n := d.res.InstalledEvents[e.Name]; n != 1 {
			fail("%s: installed %d times, want 1", e.Name, n)
			return
		}
	}
	d.res.Recovered = d.res.AbandonedBy != "" && d.res.Recovering == 1 && d.res.Recorded[morePackages[len(morePackages)-1].Name] == 1
	d.res.Verified = true
	d.step("verified: every package is done and recorded installed once; the instruction file's checksum is good; the lock is free")
}

// checkFilesInChild runs checkFiles in a child process (this binary in
// the role "verify"). Opening the lock keeps its holder file open and
// mapped for as long as the process lives; checked from a child, the
// demo itself holds nothing open in the directory it removes (Windows
// may refuse to remove a file that is open or mapped).
func (d *demo) checkFilesInChild(ctx context.Context, file, lockDir, stateDir, target string) (fileState, error) {
	var st fileState
	exe, err := os.Executable()
	if err != nil {
		return st, err
	}
	cmd, err := d.fam.command(exe, []string{file, lockDir, stateDir, target}, append(os.Environ(), envRole+"="+roleVerify))
	if err != nil {
		return st, err
	}
	cmd.Stderr = &prefixWriter{w: d.stderr, prefix: roleVerify + ": "}
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		return st, fmt.Errorf("starting the check: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		cmd.Process.Kill()
		<-done
		return st, ctx.Err()
	}
	if err != nil {
		return st, fmt.Errorf("the check: %w", err)
	}
	if err := json.Unmarshal([]byte(out.String()), &st); err != nil {
		return st, fmt.Errorf("the check's answer %q: %w", out.String(), err)
	}
	return st, nil
}

// roleVerify is the role of the child process that checks the files.
const roleVerify = "verify"

// fileState is what checkFiles found.
type fileState struct {
	Recorded map[string]int `json:"recorded"`        // installs per package, in the guarded file
	Error    string         `json:"error,omitempty"` // the first thing wrong
}

// verifyMain is the verify role: checkFiles on its arguments, the
// answer as JSON on standard output.
func verifyMain(args []string) int {
	if len(args) != 4 {
		fmt.Fprintf(os.Stderr, "demo %s: want 4 arguments, got %d\n", roleVerify, len(args))
		return cli.StatusUsage
	}
	if err := json.NewEncoder(os.Stdout).Encode(checkFiles(args[0], args[1], args[2], args[3])); err != nil {
		return cli.StatusFailure
	}
	return cli.StatusOK
}

// checkFiles checks the files a scenario leaves: the lock is free, the
// guarded file reads back, every package is in it, done and recorded
// installed once, with its files in place, and nothing else is left
// beside the instruction file.
func checkFiles(file, lockDir, stateDir, target string) (st fileState) {
	st.Recorded = map[string]int{}
	fail := func(format string, args ...any) fileState {
		st.Error = fmt.Sprintf(format, args...)
		return st
	}
	c, err := lock.New(lockName, lock.WithDir(lockDir))
	if err != nil {
		return fail("%v", err)
	}
	if h, err := c.Holder(context.Background()); !errors.Is(err, lock.ErrNotHeld) {
		return fail("the lock is still held (%+v, %v)", h, err)
	}
	g, err := guarded.Open(file, guarded.By(c))
	if err != nil {
		return fail("%v", err)
	}
	b, err := g.Read()
	if err != nil {
		return fail("%v", err)
	}
	f, err := instr.Decode(b)
	if err != nil {
		return fail("%v", err)
	}
	all := allPackages()
	if len(f.Packages) != len(all) {
		return fail("%d packages in the instruction file, want %d", len(f.Packages), len(all))
	}
	for _, e := range all {
		p := f.Find(e.Name)
		if p == nil {
			return fail("%s is missing from the instruction file", e.Name)
		}
		st.Recorded[e.Name] = p.Installs
		if p.State != instr.Done || p.Installs != 1 {
			return fail("%s: state %s, installs %d; want done, 1", e.Name, p.State, p.Installs)
		}
		m, err := os.ReadFile(filepath.Join(target, instr.Slug(e.Name), "MANIFEST"))
		if err != nil {
			return fail("%s: %v", e.Name, err)
		}
		if n := strings.Count(string(m), "\nfile: "); n != e.Files {
			return fail("%s: MANIFEST lists %d files, want %d", e.Name, n, e.Files)
		}
	}
	ents, err := os.ReadDir(stateDir)
	if err != nil {
		return fail("%v", err)
	}
	for _, e := range ents {
		if e.Name() != filepath.Base(file) {
			return fail("file left beside the instruction file: %s", e.Name())
		}
	}
	return st
}

// allPackages is every package the scenario's server offers.
func allPackages() []instr.CatalogEntry {
	return append(append([]instr.CatalogEntry(nil), firstPackages...), morePackages...)
}

// step narrates.
func (d *demo) step(format string, args ...any) {
	d.flushInst()
	if d.o.quiet {
		return
	}
	d.out.Emit(report.Event{Event: "step", Scenario: d.mode, Msg: fmt.Sprintf(format, args...)})
}

// until handles events until cond, a test of the demo's state, is
// true, and fails after the step timeout.
func (d *demo) until(ctx context.Context, what string, cond func() bool) error {
	return d.pump(ctx, d.p.wait, nil, cond, func() error {
		return fmt.Errorf("gave up waiting for %s after %v", what, d.p.wait)
	})
}

// sleep handles events for a while.
func (d *demo) sleep(ctx context.Context, dur time.Duration) error {
	return d.pump(ctx, dur, nil, never, func() error { return nil })
}

// waitExit handles events until c has exited and been reaped.
func (d *demo) waitExit(ctx context.Context, c *child) error {
	return d.pump(ctx, d.p.wait, c.done, never, func() error {
		return fmt.Errorf("the %s (pid %d) did not exit", c.role, c.cmd.Process.Pid)
	})
}

// pump handles events until stop, checked before and after each,
// reports true; or until done is closed, and then the events still
// queued too; or until dur has passed, and then returns expired(); or
// until ctx ends.
func (d *demo) pump(ctx context.Context, dur time.Duration, done <-chan struct{}, stop func() bool, expired func() error) error {
	if stop() {
		return nil
	}
	t := time.NewTimer(dur)
	defer t.Stop()
	for {
		select {
		case e := <-d.events:
			d.handle(e)
			if stop() {
				return nil
			}
		case <-done:
			for {
				select {
				case e := <-d.events:
					d.handle(e)
				default:
					return nil
				}
			}
		case <-t.C:
			return expired()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// never is a stop condition for pump that never holds.
func never() bool { return false }

// reapAll kills every child still running and waits for it, so that
// none is left behind, whatever went wrong.
func (d *demo) reapAll() {
	for _, c := range d.children {
		select {
		case <-c.done:
			continue
		default:
		}
		c.cmd.Process.Kill()
		for waiting := true; waiting; {
			select {
			case e := <-d.events:
				d.handle(e)
			case <-c.done:
				waiting = false
			}
		}
	}
	d.flushInst()
}

// stopChild asks a child to stop cleanly (Ctrl-C), or kills it where
// that signal cannot be sent.
func stopChild(c *child) {
	if runtime.GOOS == "windows" || c.cmd.Process.Signal(os.Interrupt) != nil {
		c.cmd.Process.Kill()
	}
}

// handle counts one event and shows it.
func (d *demo) handle(e report.Event) {
	e.Scenario = d.mode
	spurious := d.count(e)
	if d.o.quiet {
		return
	}
	if d.o.json {
		b, _ := json.Marshal(e)
		fmt.Fprintln(d.stdout, string(b))
		return
	}
	if d.holdBack(e) {
		return
	}
	fmt.Fprintln(d.stdout, report.Format(e, d.o.color, spurious))
}

// count records e in the demo's state and result, and says whether it
// is a spurious busy message (the lock held while nothing installs).
// A role's events carry the role's name as their Prog.
func (d *demo) count(e report.Event) (spurious bool) {
	d.seen[e.Prog+" "+e.Event] = true
	if e.Package != "" {
		d.seen[e.Prog+" "+e.Event+" "+e.Package] = true
	}
	if e.Prog == rolePoller && e.Event == pollerapp.EvStatus {
		d.shownDone = len(e.Done)
	}
	switch {
	case e.Prog == rolePoller && e.Event == pollerapp.EvBusy:
		d.res.Busy++
		if !strings.HasPrefix(e.Purpose, "installing ") {
			spurious = true
			d.res.Spurious++
		}
	case e.Prog == rolePoller && e.Event == pollerapp.EvInterrupted:
		d.res.Interrupted = true
	case e.Prog == roleInstaller && e.Event == installer.EvInvalid:
		d.res.ValidationFailures++
		if e.Locked {
			d.res.FailuresLocked++
		}
	case e.Prog == roleInstaller && e.Event == installer.EvInstalled:
		d.res.Installs++
		d.res.InstalledEvents[e.Package]++
	case e.Event == installer.EvAbandoned:
		d.res.AbandonedBy = e.Prog
	case e.Prog == roleInstaller && e.Event == installer.EvRecovering:
		d.res.Recovering++
	}
	return spurious
}

// holdBack keeps the lines of an installer run back until it shows
// whether it had anything to do, and reports whether e is held back
// or dropped. A run with nothing to do (validate, lock, nothing new,
// release) repeats every interval; its lines are dropped.
func (d *demo) holdBack(e report.Event) bool {
	if e.Prog == roleInstaller {
		switch e.Event {
		case installer.EvValidating, installer.EvLocked:
			d.pendingInst = append(d.pendingInst, e)
			return true
		case installer.EvIdle:
			d.pendingInst, d.skipRelease = nil, true
			return true
		case installer.EvReleased:
			if d.skipRelease {
				d.skipRelease = false
				return true
			}
		}
		d.flushInst()
	} else if len(d.pendingInst) > 0 && e.Time.Sub(d.pendingInst[0].Time) > idleRun {
		// Not an idle run after all (it is waiting on the server):
		// show its lines before later ones.
		d.flushInst()
	}
	return false
}

// idleRun is longer than a run with nothing to do takes.
const idleRun = 100 * time.Millisecond

// flushInst shows the installer lines held back.
func (d *demo) flushInst() {
	if !d.o.quiet && !d.o.json {
		for _, e := range d.pendingInst {
			fmt.Fprintln(d.stdout, report.Format(e, d.o.color, false))
		}
	}
	d.pendingInst = nil
}

// seenFunc returns a condition for until: an event "PROG EVENT" or
// "PROG EVENT PACKAGE" has been seen.
func (d *demo) seenFunc(key string) func() bool {
	return func() bool { return d.seen[key] }
}

func names(es []instr.CatalogEntry) []string {
	var n []string
	for _, e := range es {
		n = append(n, e.Name)
	}
	return n
}

// prefixWriter writes each line of a child's standard error with a
// prefix.
type prefixWriter struct {
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := strings.IndexByte(string(p.buf), '\n')
		if i < 0 {
			return len(b), nil
		}
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i])
		p.buf = p.buf[i+1:]
	}
}
