package installer

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

// repeated is a flag that may be given several times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(s string) error { *r = append(*r, s); return nil }

const usage = `usage: installer [flags] -file PATH -target DIR (-server URL | -share DIR)...

The background installer of the agentlock examples. Each run:

  1. validates a logon server (HTTP: GET URL/health; share: DIR/packages.json
     readable), with the lock still free;
  2. takes the lock only then, saying "querying <server>";
  3. reads the catalog (URL/packages.json, or DIR/packages.json) from the
     server that was validated, and queues new packages in the instruction
     file (-file, a guarded file written only under the lock);
  4. installs each queued package into -target, saying "installing <package>",
     recording installing and done in the instruction file;
  5. releases the lock.

A package left "installing" by a run that died (kill -9, power loss) is
installed again by the next run, and counted once.

-legacy swaps steps 1 and 2 (lock first, validate second): the 1990s bug
where a dead network kept the lock held and the foreground poller said a
package was being installed when nothing was.

Run it as a service (the default: a run every -interval) or once (-once,
exit status 1 if the run failed). Stop it with Ctrl-C or SIGTERM.

Flags:
`

// Main is the installer program: it parses args (without the program
// name), runs, and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("installer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	var (
		cfg             Config
		servers, shares repeated
		asJSON, noColor bool
	)
	fs.Var(&servers, "server", "HTTP logon server base `URL` (checked at URL/health; may be repeated, tried in order)")
	fs.Var(&shares, "share", "logon share `DIR` holding packages.json (may be repeated, tried after the servers)")
	fs.StringVar(&cfg.File, "file", "", "`PATH` of the instruction file shared with the poller (required)")
	fs.StringVar(&cfg.Target, "target", "", "`DIR`ectory packages are installed into (required)")
	fs.StringVar(&cfg.LockDir, "lock-dir", "", "`DIR`ectory of the lock files (default: the lock package's system-wide default)")
	fs.StringVar(&cfg.LockName, "lock", "pcm-install", "`name` of the lock shared with the poller")
	fs.DurationVar(&cfg.InstallTime, "install-time", 2*time.Second, "how long installing one package takes")
	fs.DurationVar(&cfg.CheckTimeout, "check-timeout", 5*time.Second, "timeout of a logon server check, and of reading the catalog")
	fs.DurationVar(&cfg.Interval, "interval", 30*time.Second, "time between runs in service mode")
	fs.BoolVar(&cfg.Once, "once", false, "make one run and exit")
	fs.BoolVar(&cfg.Legacy, "legacy", false, "take the lock FIRST and validate second (the bug, for comparison)")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object per event instead of text")
	fs.BoolVar(&noColor, "no-color", false, "no colour, even on a terminal")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "installer: unexpected arguments: %q\n", fs.Args())
		return 2
	}
	cfg.Servers, cfg.Shares = servers, shares

	color := !noColor && !asJSON && stdout == io.Writer(os.Stdout) && report.ColorOK(os.Stdout)
	out := report.NewPrinter(stdout, "installer", asJSON, color)
	in, err := New(cfg, out)
	if err != nil {
		fmt.Fprintf(stderr, "installer: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := in.Run(ctx); err != nil {
		return 1
	}
	return 0
}
