package pollerapp

import (
	"fmt"
	"io"

	"github.com/agentlock/agentlock/examples/internal/cli"
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

Exit status: 0 when stopped; 1 when the lock or the instruction file
could not be opened; 2 for a mistake on the command line.

Flags:
`

// Main is the poller program: it parses args (without the program
// name), runs until interrupted, and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	cmd := cli.New("poller", usage, stdout, stderr)
	fs := cmd.Flags
	var (
		cfg    Config
		notify string
	)
	fs.StringVar(&cfg.File, "file", "", "`PATH` of the instruction file shared with the installer (required)")
	cmd.LockFlags(&cfg.LockDir, &cfg.LockName, "the installer")
	fs.DurationVar(&cfg.Interval, "interval", poll.DefaultInterval, "time between looks")
	fs.StringVar(&notify, "notify", "", "notification `policy` (see above; overrides $"+poll.EnvNotify+")")
	printer := cmd.OutputFlags()
	check := func() error {
		switch {
		case cfg.File == "":
			return cli.Needs("file", "the path of the instruction file shared with the installer")
		case cfg.LockName == "":
			return cli.Needs("lock", "a lock name")
		case cfg.Interval <= 0:
			return &cli.UsageError{Flag: "interval", Want: "a positive duration", Got: cfg.Interval.String()}
		}
		if notify == "" {
			return nil
		}
		// A mistake on the command line is fatal; one in the
		// environment is reported and the default kept (below).
		var err error
		if cfg.Policy, err = poll.ParsePolicy(notify, poll.DefaultPolicy()); err != nil {
			return &cli.UsageError{Flag: "notify", Want: "a notification policy (see -h)", Err: err}
		}
		return nil
	}
	if status, ok := cmd.Parse(args, check); !ok {
		return status
	}
	out := printer()
	if notify == "" {
		var err error
		if cfg.Policy, err = poll.PolicyFromEnv(poll.EnvNotify, poll.DefaultPolicy()); err != nil {
			msg := fmt.Sprintf("%v (using the default policy %v)", err, cfg.Policy)
			out.Emit(report.Event{Event: EvError, Error: err.Error(), Msg: msg})
		}
	}
	ctx, stop := cli.Context()
	defer stop()
	return cmd.Exit(Run(ctx, cfg, out))
}
