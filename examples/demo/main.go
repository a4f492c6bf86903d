// Command demo plays the whole agentlock story in one command, with
// nothing to install or configure:
//
//	go run ./examples/demo
//
// It starts a logon server on loopback (in this process), then the
// installer and the poller as separate processes (this binary run
// again in their roles, so no Go toolchain is needed at run time), and
// plays a short scenario: packages queued and installed while the
// poller shows its message; the logon server going silent; the server
// back with more packages; the installer killed with kill -9 in the
// middle of an install and recovering on its next run. It plays it
// with the fixed order (validate first, lock second) and with the
// legacy one (lock first), and ends with a table comparing the two.
// Run it with -h for the flags.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agentlock/agentlock/examples/internal/cli"
	"github.com/agentlock/agentlock/examples/internal/installer"
	"github.com/agentlock/agentlock/examples/internal/pollerapp"
	"github.com/agentlock/agentlock/examples/internal/report"
	"github.com/agentlock/agentlock/poll"
)

// envRole names the role a re-executed demo binary plays.
const envRole = "AGENTLOCK_DEMO_ROLE"

// The roles a re-executed demo binary plays besides roleReaper and
// roleVerify: the example programs, named as they name themselves in
// their events' Prog.
const (
	roleInstaller = "installer"
	rolePoller    = "poller"
)

const usage = `usage: demo [flags]

Plays the agentlock story with a logon server on loopback and the
installer and poller as separate processes, first with the fixed order
(validate the logon server first, take the lock second), then with the
legacy order (lock first), and compares them (-mode fixed or -mode
legacy plays one; -quiet -tempo 0.3 is the quickest look):

  1. three packages are queued and installed; the poller shows
     "A package is currently being installed in the background: ..."
  2. the logon server stops answering: the installer's checks time out
  3. the server is back with two more packages
  4. the installer is killed (kill -9) in the middle of an install; the
     poller, which only watches, finds the lock free while the file says
     "installing" and reports the install as interrupted
  5. the restarted installer takes the lock first, so its lease is marked
     Abandoned; it finds the package marked "installing" and installs it
     again, counted once
  6. summary: busy messages shown, how many were spurious (the lock was
     held while nothing was being installed), installs completed

Every process it starts ends with it, and its temporary directory is
removed, however the demo ends (Ctrl-C, SIGTERM, kill -9, or a closed
output pipe as in "demo -json | head -3").

Exit status: 0 when every scenario played and verified; 1 when one
failed or the demo was stopped early; 2 for a mistake on the command
line.

Flags:
`

func main() {
	switch role := os.Getenv(envRole); role {
	case roleInstaller:
		os.Exit(installer.Main(os.Args[1:], os.Stdout, os.Stderr))
	case rolePoller:
		os.Exit(pollerapp.Main(os.Args[1:], os.Stdout, os.Stderr))
	case roleReaper:
		os.Exit(reaper())
	case roleVerify:
		os.Exit(verifyMain(os.Args[1:]))
	case "":
	default:
		fmt.Fprintf(os.Stderr, "demo: unknown role $%s=%q\n", envRole, role)
		os.Exit(cli.StatusUsage)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the demo's flags.
type options struct {
	modes        []string // "fixed", "legacy"
	tempo        float64
	notify       string
	quiet, json  bool
	color        bool
	installerBin string
	pollerBin    string
}

func run(args []string, stdout, stderr io.Writer) int {
	o, p, status, ok := parseFlags(args, stdout, stderr)
	if !ok {
		return status
	}
	ctx, stop := cli.Context()
	defer stop()
	ctx, stdout, cancel := stopOnClosedOutput(ctx, stdout)
	defer cancel(nil)

	results, status, stopped := playAll(ctx, o, p, stdout, stderr)
	if stopped {
		return status
	}
	printSummary(stdout, o, results)
	return status
}

// parseFlags reads the demo's flags. When it reports !ok, the run ends
// with status (the flags were wrong, or -h asked for the usage).
func parseFlags(args []string, stdout, stderr io.Writer) (o options, p params, status int, ok bool) {
	cmd := cli.New("demo", usage, stdout, stderr)
	fs := cmd.Flags
	var (
		mode    string
		noColor bool
	)
	fs.StringVar(&mode, "mode", "compare", "`order` to play: fixed (validate first, lock second), legacy (lock first), or compare (both, then a table)")
	fs.Float64Var(&o.tempo, "tempo", 1, "scale every duration by this `factor` (0.5: twice as fast)")
	fs.StringVar(&o.notify, "notify", "", "the poller's notification `policy` (default: $"+poll.EnvNotify+", else after=0.6s;every=1s scaled by -tempo)")
	fs.BoolVar(&o.quiet, "quiet", false, "print only the summary")
	fs.BoolVar(&o.json, "json", false, "print every event and the summary as JSON lines")
	fs.BoolVar(&noColor, "no-color", false, "no colour (it is off anyway when the output is not a terminal)")
	fs.StringVar(&o.installerBin, "installer-bin", "", "run this installer `program` (built from examples/installer) instead of this binary")
	fs.StringVar(&o.pollerBin, "poller-bin", "", "run this poller `program` (built from examples/poller) instead of this binary")
	check := func() (err error) {
		p, err = o.check(mode)
		return err
	}
	if status, ok := cmd.Parse(args, check); !ok {
		return o, p, status, false
	}
	o.color = !noColor && !o.json && !o.quiet && stdout == io.Writer(os.Stdout) && report.ColorOK(os.Stdout)
	return o, p, cli.StatusOK, true
}

// check checks the flags' values, fills in o.modes from mode and the
// default policy, and returns the durations at o's tempo.
func (o *options) check(mode string) (params, error) {
	switch mode {
	case "fixed", "legacy":
		o.modes = []string{mode}
	case "compare":
		o.modes = []string{"fixed", "legacy"}
	default:
		return params{}, &cli.UsageError{Flag: "mode", Want: "fixed, legacy or compare", Got: mode}
	}
	if !(o.tempo >= 0.05 && o.tempo <= 20) {
		return params{}, &cli.UsageError{Flag: "tempo", Want: "a factor between 0.05 and 20", Got: fmt.Sprint(o.tempo)}
	}
	p := paramsFor(o.tempo)
	if o.notify == "" {
		o.notify = os.Getenv(poll.EnvNotify)
	}
	if o.notify == "" {
		o.notify = fmt.Sprintf("after=%v;every=%v", p.grace, p.every)
	}
	if _, err := poll.ParsePolicy(o.notify, poll.DefaultPolicy()); err != nil {
		return p, &cli.UsageError{Flag: "notify", Want: "a notification policy (see poller -h)", Err: err}
	}
	return p, nil
}

// stopOnClosedOutput makes a reader that went away ("demo -json | head
// -3") end the demo like Ctrl-C does, with everything cleaned up,
// instead of killing it with SIGPIPE on its next line.
func stopOnClosedOutput(ctx context.Context, stdout io.Writer) (context.Context, io.Writer, context.CancelCauseFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stdout = &closedWatch{w: stdout, closed: func(err error) { cancel(fmt.Errorf("standard output: %w", err)) }}
	signal.Ignore(syscall.SIGPIPE)
	return ctx, stdout, cancel
}

// printSummary prints the results: a JSON line with -json, else a
// table.
func printSummary(stdout io.Writer, o options, results []result) {
	if !o.json {
		printTable(stdout, o, results)
		return
	}
	b, _ := json.Marshal(struct {
		Event   string   `json:"event"`
		Policy  string   `json:"policy"`
		Results []result `json:"results"`
	}{"summary", o.notify, results})
	fmt.Fprintln(stdout, string(b))
}

// playAll plays the scenario in each of o.modes, and returns their
// results and the exit status. When ctx ends it stops at once, says so
// and reports stopped.
func playAll(ctx context.Context, o options, p params, stdout, stderr io.Writer) (results []result, status int, stopped bool) {
	status = cli.StatusOK
	for _, m := range o.modes {
		d := newDemo(o, p, m, stdout, stderr)
		r, err := d.play(ctx)
		if ctx.Err() != nil {
			why := "interrupted"
			if c := context.Cause(ctx); c != nil && c != ctx.Err() {
				why = c.Error()
			}
			fmt.Fprintf(stderr, "demo: %s; the installer and the poller are stopped and the temporary files removed\n", why)
			return nil, cli.StatusFailure, true
		}
		if err != nil {
			fmt.Fprintf(stderr, "demo: %s scenario: %v\n", m, err)
			status = cli.StatusFailure
		}
		if !r.Verified {
			status = cli.StatusFailure
		}
		results = append(results, r)
	}
	return results, status, false
}

// closedWatch passes writes on to w and calls closed once, on the
// first one that fails.
type closedWatch struct {
	w      io.Writer
	once   sync.Once
	closed func(error)
}

func (c *closedWatch) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	if err != nil {
		c.once.Do(func() { c.closed(err) })
	}
	return n, err
}

// params are the scenario's durations at one tempo.
type params struct {
	install      time.Duration // per package
	checkTimeout time.Duration // the installer's logon check timeout
	instInterval time.Duration // between installer runs
	pollInterval time.Duration // between poller looks
	grace        time.Duration // default policy: notify after this
	every        time.Duration // default policy: at most once per hold per this
	wait         time.Duration // the longest any step may take
}

func paramsFor(tempo float64) params {
	s := func(d time.Duration) time.Duration { return time.Duration(float64(d) * tempo).Round(time.Millisecond) }
	return params{
		install:      s(1200 * time.Millisecond),
		checkTimeout: s(1500 * time.Millisecond),
		instInterval: s(500 * time.Millisecond),
		pollInterval: s(200 * time.Millisecond),
		grace:        s(600 * time.Millisecond),
		every:        s(time.Second),
		wait:         max(s(30*time.Second), 20*time.Second),
	}
}

func printTable(w io.Writer, o options, rs []result) {
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "NO"
	}
	rows := []struct {
		label string
		cell  func(r result) string
	}{
		{"busy messages shown", func(r result) string { return fmt.Sprint(r.Busy) }},
		{"  spurious: lock held, nothing installing", func(r result) string { return fmt.Sprint(r.Spurious) }},
		{"failed logon validations", func(r result) string { return fmt.Sprint(r.ValidationFailures) }},
		{"  ...while holding the lock", func(r result) string { return fmt.Sprint(r.FailuresLocked) }},
		{"installs completed", func(r result) string { return fmt.Sprint(r.Installs) }},
		{"abandoned lease seen by", func(r result) string { return r.AbandonedBy }},
		{"killed install redone, counted once", func(r result) string { return yes(r.Recovered) }},
		{"instruction file verified", func(r result) string { return yes(r.Verified) }},
	}
	b := func(s string) string {
		if o.color {
			return "\x1b[1m" + s + "\x1b[0m"
		}
		return s
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%s", b(fmt.Sprintf("%-42s", "")))
	for _, r := range rs {
		fmt.Fprintf(w, "%s", b(fmt.Sprintf("%10s", r.Mode)))
	}
	fmt.Fprintln(w)
	for _, row := range rows {
		fmt.Fprintf(w, "%-42s", row.label)
		for _, r := range rs {
			cell := fmt.Sprintf("%10s", row.cell(r))
			if o.color && strings.HasPrefix(row.label, "  spurious") && r.Spurious > 0 {
				cell = "\x1b[1;31m" + cell + "\x1b[0m"
			}
			fmt.Fprint(w, cell)
		}
		fmt.Fprintln(w)
	}
	if len(rs) != 2 {
		fmt.Fprintf(w, "\nNotification policy: %s. Run with -mode compare (the default) to compare both orders.\n", o.notify)
		return
	}
	fmt.Fprintf(w, "\nSame installer, same poller, same notification policy (%s); only the order differs.\n", o.notify)
	{
		fmt.Fprintln(w, "Legacy: the lock is taken first, so a silent logon server keeps it held for the whole")
		fmt.Fprintln(w, "timeout and the poller says a package is being installed when nothing is.")
	}
}
