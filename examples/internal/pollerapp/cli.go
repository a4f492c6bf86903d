package pollerapp

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/agentlock/agentlock/examples/internal/report"
	"github.com/agentlock/agentlock/poll"
)

const usage = `usage: poller [flags] -file PATH

The foreground poller of the agentlock examples. It shows what the
background installer has pending, installing and done in the shared
instruction file (-file), and, when the installer holds the lock, the
message

  A package is currently being installed in the background: <package>, by pid N, for 12 s

as often as the notification policy allows. The policy is -notify if
given, else $AGENTLOCK_NOTIFY, else the library default (after=10s).
Examples of policies:

  always                      every busy look (the classic poller)
  never                       the message is off
  after=30s                   only once the lock has been busy 30 s
  purpose=installing*         only when the holder says it is installing
  after=1s;every=5s           after 1 s, then at most every 5 s per hold

Stop it with Ctrl-C or SIGTERM.

Flags:
`

// Main is the poller program: it parses args (without the program
// name), runs until interrupted, and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("poller", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	var (
		cfg             Config
		notify          string
		asJSON, noColor bool
	)
	fs.StringVar(&cfg.File, "file", "", "`PATH` of the instruction file shared with the installer (required)")
	fs.StringVar(&cfg.LockDir, "lock-dir", "", "`DIR`ectory of the lock files (default: the lock package's system-wide default)")
	fs.StringVar(&cfg.LockName, "lock", "pcm-install", "`name` of the lock shared with the installer")
	fs.DurationVar(&cfg.Interval, "interval", poll.DefaultInterval, "time between looks")
	fs.StringVar(&notify, "notify", "", "notification `policy` (see above; overrides $"+poll.EnvNotify+")")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object per event instead of text")
	fs.BoolVar(&noColor, "no-color", false, "no colour, even on a terminal")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "poller: unexpected arguments: %q\n", fs.Args())
		return 2
	}
	if cfg.File == "" {
		fmt.Fprintln(stderr, "poller: -file is required")
		return 2
	}
	if cfg.Interval <= 0 {
		fmt.Fprintln(stderr, "poller: -interval must be positive")
		return 2
	}
	color := !noColor && !asJSON && stdout == io.Writer(os.Stdout) && report.ColorOK(os.Stdout)
	out := report.NewPrinter(stdout, "poller", asJSON, color)
	var err error
	if notify != "" {
		// A mistake on the command line is fatal; one in the
		// environment is reported and the default kept.
		if cfg.Policy, err = poll.ParsePolicy(notify, poll.DefaultPolicy()); err != nil {
			fmt.Fprintf(stderr, "poller: -notify: %v\n", err)
			return 2
		}
	} else if cfg.Policy, err = poll.PolicyFromEnv(poll.EnvNotify, poll.DefaultPolicy()); err != nil {
		out.Emit(report.Event{Event: EvError, Error: err.Error(), Msg: err.Error()})
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, cfg, out); err != nil {
		fmt.Fprintf(stderr, "poller: %v\n", err)
		return 1
	}
	return 0
}
