// Command agentlock is the lock of package lock for shells, scripts
// and operators: who holds a lock and since when, run a command under
// it (validating a logon server first), wait for it, and read or
// replace the file it guards.
//
//	go install github.com/agentlock/agentlock/examples/agentlock@latest
//
//	agentlock run [-n | -w DURATION] [-E CODE] [-C CODE] [-purpose TEXT] [-check SERVER ...] NAME [--] COMMAND [ARGS...]
//	agentlock who [-json] NAME
//	agentlock ls [-json]
//	agentlock wait [-w DURATION] NAME
//	agentlock cat [-v] PATH
//	agentlock put [-n | -w DURATION] NAME PATH < DATA
//
// Every command takes -dir DIR (the lock directory; default: the lock
// package's system-wide one, /run/lock on Linux, /var/tmp on macOS and
// the BSDs but OpenBSD, %ProgramData%\agentlock on Windows), -mutex (the named-mutex
// backend) and -scope local|global (its namespace). Run "agentlock
// COMMAND -h" for the details of each, including its exit statuses.
// Usage errors exit with status 2 and name the flag or argument;
// -h prints the usage on standard output and exits 0.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Exit statuses shared by the commands; each command's usage says
// which it uses.
const (
	exitOK     = 0
	exitNo     = 1 // busy, timed out, free (who), corrupt (cat)
	exitUsage  = 2 // bad flags or arguments; also errors of who, ls, wait, cat, put
	exitCheck  = 3 // run: no valid logon server; put: fenced
	exitLost   = 4 // run, put: the lock was lost (its lock file removed or replaced)
	exitFailed = 125
	exitNoExec = 126 // run: the command could not be started
	exitNoCmd  = 127 // run: the command was not found
)

const usage = `usage: agentlock COMMAND [flags] ARGS

Commands:
  run   run a command holding a lock (like flock(1)), validating servers first
  who   show who holds a lock
  ls    list the locks in the lock directory and their state
  wait  wait until a lock is free, without taking it
  cat   print a guarded file after verifying it
  put   replace a guarded file with standard input, holding its lock

Run "agentlock COMMAND -h" for a command's flags and exit statuses.
`

// commands maps a command name to its implementation. Each gets the
// arguments after its name and returns the exit status.
var commands = map[string]func(*env, []string) int{
	"run":  cmdRun,
	"who":  cmdWho,
	"ls":   cmdLs,
	"wait": cmdWait,
	"cat":  cmdCat,
	"put":  cmdPut,
}

// env is what a command talks to.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

func main() {
	os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Main runs the command line args (without the program name) and
// returns the exit status.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "agentlock: unknown command %q\n%s", args[0], usage)
		return exitUsage
	}
	return cmd(e, args[1:])
}

// flags is a command's flag set with agentlock's conventions: -h
// prints the usage on standard output and exits 0; a bad flag prints
// the flag package's message, which names the flag, and exits 2.
type flags struct {
	*flag.FlagSet
	e      *env
	cmd    string
	header string // usage text before the flag list
}

func newFlags(e *env, cmd, header string) *flags {
	f := &flags{FlagSet: flag.NewFlagSet("agentlock "+cmd, flag.ContinueOnError), e: e, cmd: cmd, header: header}
	f.SetOutput(io.Discard) // parse reports errors itself
	return f
}

// parse parses args. It returns -1 if the command should go on, and
// otherwise the status to exit with.
func (f *flags) parse(args []string) int {
	err := f.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		f.printUsage(f.e.stdout)
		return exitOK
	}
	if err != nil {
		return f.usageError("%v", err)
	}
	return -1
}

func (f *flags) printUsage(w io.Writer) {
	fmt.Fprint(w, f.header)
	f.SetOutput(w)
	f.PrintDefaults()
	f.SetOutput(io.Discard)
}

// usageError reports a mistake on the command line and returns
// exitUsage.
func (f *flags) usageError(format string, a ...any) int {
	fmt.Fprintf(f.e.stderr, "agentlock %s: %s\nRun \"agentlock %s -h\" for usage.\n", f.cmd, fmt.Sprintf(format, a...), f.cmd)
	return exitUsage
}

// fail reports an error that is not a usage error and returns status.
func (f *flags) fail(status int, err error) int {
	fmt.Fprintf(f.e.stderr, "agentlock %s: %v\n", f.cmd, err)
	return status
}

// set reports whether the flag name was given on the command line.
func (f *flags) set(name string) bool {
	found := false
	f.Visit(func(fl *flag.Flag) { found = found || fl.Name == name })
	return found
}

// repeated is a flag that may be given several times.
type repeated []string

func (r *repeated) String() string { return strings.Join(*r, " ") }
func (r *repeated) Set(s string) error {
	if s == "" {
		return errors.New("empty value")
	}
	*r = append(*r, s)
	return nil
}
