package installer

import (
	"io"
	"net/url"
	"time"

	"github.com/agentlock/agentlock/examples/internal/cli"
)

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

Run it as a service (the default: a run every -interval) or once (-once).
Stop it with Ctrl-C or SIGTERM.

Exit status: 0 when stopped (service) or after a run that succeeded
(-once); 1 when a -once run failed, or the lock or the instruction file
could not be opened; 2 for a mistake on the command line.

Flags:
`

// Main is the installer program: it parses args (without the program
// name), runs, and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	cmd := cli.New("installer", usage, stdout, stderr)
	fs := cmd.Flags
	var (
		cfg             Config
		servers, shares cli.Repeated
	)
	fs.Var(&servers, "server", "HTTP logon server base `URL` (checked at URL/health; may be repeated, tried in order)")
	fs.Var(&shares, "share", "logon share `DIR` holding packages.json (may be repeated, tried after the servers)")
	fs.StringVar(&cfg.File, "file", "", "`PATH` of the instruction file shared with the poller (required)")
	fs.StringVar(&cfg.Target, "target", "", "`DIR`ectory packages are installed into (required)")
	cmd.LockFlags(&cfg.LockDir, &cfg.LockName, "the poller")
	fs.DurationVar(&cfg.InstallTime, "install-time", 2*time.Second, "how long installing one package takes")
	fs.DurationVar(&cfg.CheckTimeout, "check-timeout", 5*time.Second, "timeout of a logon server check, and of reading the catalog")
	fs.DurationVar(&cfg.Interval, "interval", 30*time.Second, "time between runs in service mode")
	fs.BoolVar(&cfg.Once, "once", false, "make one run and exit")
	fs.BoolVar(&cfg.Legacy, "legacy", false, "take the lock FIRST and validate second (the bug, for comparison)")
	printer := cmd.OutputFlags()
	check := func() error {
		cfg.Servers, cfg.Shares = servers, shares
		return checkConfig(cfg)
	}
	if status, ok := cmd.Parse(args, check); !ok {
		return status
	}

	in, err := New(cfg, printer())
	if err != nil {
		return cmd.Exit(err)
	}
	ctx, stop := cli.Context()
	defer stop()
	return cmd.Exit(in.Run(ctx))
}

// checkConfig reports the mistakes on the command line: each names its
// flag and says what it wants.
func checkConfig(cfg Config) error {
	for _, s := range cfg.Servers {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &cli.UsageError{Flag: "server", Want: "an http:// or https:// URL", Got: s}
		}
	}
	for _, s := range cfg.Shares {
		if s == "" {
			return cli.Needs("share", "a directory")
		}
	}
	switch {
	case len(cfg.Servers)+len(cfg.Shares) == 0:
		return &cli.UsageError{Want: "a logon server is needed: give -server URL or -share DIR"}
	case cfg.File == "":
		return cli.Needs("file", "the path of the instruction file shared with the poller")
	case cfg.Target == "":
		return cli.Needs("target", "the directory to install packages into")
	case cfg.LockName == "":
		return cli.Needs("lock", "a lock name")
	case cfg.InstallTime < 0:
		return &cli.UsageError{Flag: "install-time", Want: "a duration of 0 or more", Got: cfg.InstallTime.String()}
	case cfg.CheckTimeout <= 0:
		return &cli.UsageError{Flag: "check-timeout", Want: "a positive duration", Got: cfg.CheckTimeout.String()}
	case cfg.Interval <= 0:
		return &cli.UsageError{Flag: "interval", Want: "a positive duration", Got: cfg.Interval.String()}
	}
	return nil
}
