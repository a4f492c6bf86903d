// Package cli is the command-line behaviour the example programs share,
// so that the installer, the poller and the demo act alike:
//
//   - exit status 0 on success, 1 when the program ran and failed (or
//     was stopped before it was done), 2 for a mistake on the command line;
//   - -h (or -help) prints the usage to standard output and exits 0;
//   - a mistake on the command line prints one line naming the flag and
//     what it wants, then a pointer to -h, on standard error;
//   - Ctrl-C and SIGTERM end the program's context;
//   - a program started by the demo ends when the demo does (see
//     [ParentPipeEnv]).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/agentlock/agentlock/examples/internal/report"
)

// The exit statuses of every example program.
const (
	StatusOK      = 0
	StatusFailure = 1 // the program ran and failed, or was stopped early
	StatusUsage   = 2 // a mistake on the command line (the flag package's convention)
)

// A UsageError is a mistake on the command line. Its text names the
// flag and says what the flag wants.
type UsageError struct {
	Flag string // without the dash; empty for a positional argument
	Want string // "an http:// or https:// URL"
	Got  string // the offending value, if it helps
	Err  error  // what was wrong with it, if more can be said
}

func (e *UsageError) Error() string {
	s := "-" + e.Flag + " needs " + e.Want
	if e.Flag == "" {
		s = e.Want
	}
	if e.Got != "" {
		s += fmt.Sprintf(" (got %q)", e.Got)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *UsageError) Unwrap() error { return e.Err }

// Needs returns a UsageError: "-flag needs want".
func Needs(flag, want string) error { return &UsageError{Flag: flag, Want: want} }

// A Command is one program's command line.
type Command struct {
	Name  string        // "installer"
	Usage string        // what -h prints before the flags
	Flags *flag.FlagSet // define the flags on it before Parse

	Stdout, Stderr io.Writer
}

// New returns a Command named name with an empty flag set.
func New(name, usage string, stdout, stderr io.Writer) *Command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// Parse reports errors itself, in one line.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &Command{Name: name, Usage: usage, Flags: fs, Stdout: stdout, Stderr: stderr}
}

// Parse parses args (without the program name), then runs check, which
// validates the flags' values and returns a *UsageError for a mistake.
// It returns ok false when the program should exit at once, with the
// status to exit with: StatusOK after -h, StatusUsage after a mistake
// (already reported).
func (c *Command) Parse(args []string, check func() error) (status int, ok bool) {
	restore := c.explainValues()
	err := c.Flags.Parse(args)
	restore()
	switch {
	case errors.Is(err, flag.ErrHelp):
		c.PrintUsage(c.Stdout)
		return StatusOK, false
	case err != nil:
		return c.usageError(err), false
	case c.Flags.NArg() > 0:
		return c.usageError(&UsageError{Want: fmt.Sprintf("%s takes only flags", c.Name), Got: c.Flags.Arg(0)}), false
	}
	if check != nil {
		if err := check(); err != nil {
			return c.Exit(err), false
		}
	}
	return StatusOK, true
}

// PrintUsage writes the usage text and the flags to w.
func (c *Command) PrintUsage(w io.Writer) {
	fmt.Fprint(w, c.Usage)
	c.Flags.SetOutput(w)
	c.Flags.PrintDefaults()
	c.Flags.SetOutput(io.Discard)
}

func (c *Command) usageError(err error) int {
	fmt.Fprintf(c.Stderr, "%s: %v\nRun '%s -h' for usage.\n", c.Name, err, c.Name)
	return StatusUsage
}

// Exit reports err, if any, on standard error and returns the status
// for it: StatusOK for nil, StatusUsage for a *UsageError, StatusFailure
// for anything else.
func (c *Command) Exit(err error) int {
	var ue *UsageError
	switch {
	case err == nil:
		return StatusOK
	case errors.As(err, &ue):
		return c.usageError(err)
	}
	fmt.Fprintf(c.Stderr, "%s: %v\n", c.Name, err)
	return StatusFailure
}

// LockFlags registers -lock-dir and -lock, the lock the program shares
// with peer ("the poller"), into dir and name.
func (c *Command) LockFlags(dir, name *string, peer string) {
	c.Flags.StringVar(dir, "lock-dir", "", "`DIR`ectory of the lock files (default: the lock package's system-wide default)")
	c.Flags.StringVar(name, "lock", "pcm-install", "`name` of the lock shared with "+peer)
}

// OutputFlags registers -json and -no-color, and returns the function
// that gives the program's event printer for standard output once the
// flags are parsed: JSON lines with -json, else text, in colour on a
// terminal unless -no-color.
func (c *Command) OutputFlags() (printer func() *report.Printer) {
	asJSON := c.Flags.Bool("json", false, "print one JSON object per event instead of text")
	noColor := c.Flags.Bool("no-color", false, "no colour, even on a terminal")
	return func() *report.Printer {
		color := !*noColor && !*asJSON && c.Stdout == io.Writer(os.Stdout) && report.ColorOK(os.Stdout)
		return report.NewPrinter(c.Stdout, c.Name, *asJSON, color)
	}
}

// Context returns a context that ends on Ctrl-C or SIGTERM, and when
// the program that started this one (the demo) ends.
func Context() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	watchParent()
	return ctx, stop
}

// explainValues makes a bad value's error say what the flag wants
// ("invalid value "x" for flag -interval: want a duration such as 500ms
// or 2s" instead of "parse error"), for the duration of one Parse. It
// returns the function that puts the flags' own values back, which
// PrintDefaults needs to show their types and defaults.
func (c *Command) explainValues() (restore func()) {
	var undo []func()
	c.Flags.VisitAll(func(f *flag.Flag) {
		g, ok := f.Value.(flag.Getter)
		if !ok {
			return
		}
		var want string
		switch g.Get().(type) {
		case time.Duration:
			want = "want a duration such as 500ms, 2s or 1m30s"
		case float64:
			want = "want a number"
		case int, int64, uint, uint64:
			want = "want a whole number"
		case bool:
			want = "want true or false"
		default:
			return
		}
		orig := f.Value
		f.Value = explained{orig, want}
		undo = append(undo, func() { f.Value = orig })
	})
	return func() {
		for _, u := range undo {
			u()
		}
	}
}

// explained is a flag value whose parse errors say what it wants.
type explained struct {
	flag.Value
	want string
}

func (e explained) Set(s string) error {
	if err := e.Value.Set(s); err != nil {
		return errors.New(e.want)
	}
	return nil
}

// IsBoolFlag keeps -flag (without =true) working for booleans.
func (e explained) IsBoolFlag() bool {
	b, ok := e.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// Repeated is a flag that may be given several times.
type Repeated []string

func (r *Repeated) String() string     { return strings.Join(*r, ",") }
func (r *Repeated) Set(s string) error { *r = append(*r, s); return nil }
