package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/agentlock/agentlock/lock"
)

const whoUsage = `usage: agentlock who [flags] NAME

Show who holds the lock NAME: process id, host, purpose, since when (local
time) and for how long, and fencing token; or "free", or "free (its last
holder died holding it)": what the lock guards may then be half-written.
It reads the published holder record and never contends for the lock.

A program that locks the file NAME.lock without this package (flock(1) on
it, for example) publishes no record. On Linux, where the system's lock
table (/proc/locks) tells its process id, who shows it as "held by pid N
(foreign: locked without agentlock, no record)" (with -json, "foreign":
true and only the pid); elsewhere who does not see it and says "free".

Exit status: 0 if the lock is held, 1 if it is free, 2 on an error.

Flags:
`

const lsUsage = `usage: agentlock ls [flags]

List every lock in the lock directory (every NAME with a NAME.holder file;
with -mutex, the named mutexes' holder files) with its state: held (by
whom, for how long, why), free, or free after its last holder died holding
it. Like who, it never contends for a lock.

Exit status: 0, or 2 on an error (1 if any single lock's state could not
be read; the others are listed).

Flags:
`

func cmdWho(e *env, args []string) int {
	var b backendFlags
	f := newFlags(e, "who", whoUsage)
	asJSON := f.Bool("json", false, "print one JSON object")
	b.register(f)
	if st := b.parse(f, args); st >= 0 {
		return st
	}
	if f.NArg() != 1 {
		return f.usageError("want one NAME, have %d arguments", f.NArg())
	}
	c, st := b.coordinator(f, f.Arg(0), exitUsage)
	if st >= 0 {
		return st
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := inspect(ctx, c, time.Now())
	if err != nil {
		return f.fail(exitUsage, err)
	}
	if *asJSON {
		writeJSON(e.stdout, s)
	} else {
		s.text(e.stdout)
	}
	if s.State == stateHeld {
		return exitOK
	}
	return exitNo
}

func cmdLs(e *env, args []string) int {
	var b backendFlags
	f := newFlags(e, "ls", lsUsage)
	asJSON := f.Bool("json", false, "print one JSON object per lock, one per line")
	b.register(f)
	if st := b.parse(f, args); st >= 0 {
		return st
	}
	if f.NArg() != 0 {
		return f.usageError("unexpected arguments %q", f.Args())
	}
	dir, err := b.lockDir()
	if err != nil {
		return f.fail(exitUsage, err)
	}
	names, err := b.lockNames(dir)
	if err != nil {
		return f.fail(exitUsage, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	status, now := exitOK, time.Now()
	for _, name := range names {
		c, st := b.coordinator(f, name, exitUsage)
		if st >= 0 {
			return st
		}
		s, err := inspect(ctx, c, now)
		if err != nil {
			status = exitNo
		}
		if *asJSON {
			writeJSON(e.stdout, s)
		} else {
			fmt.Fprintf(e.stdout, "%-24s %s\n", name, s.short())
		}
	}
	return status
}

// lockNames lists the names of the locks in dir: those with a holder
// file, the file every holder publishes its record in. Files whose
// names are not lock names are someone else's and skipped.
func (b *backendFlags) lockNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	prefix := ""
	if b.mutex {
		prefix = "_mutex."
		if b.scope == "local" {
			prefix += localNamespace() + "."
		}
	}
	var names []string
	for _, ent := range entries {
		n, ok := strings.CutSuffix(ent.Name(), ".holder")
		if !ok || !ent.Type().IsRegular() {
			continue
		}
		if n, ok = strings.CutPrefix(n, prefix); ok && validName(n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

// validName reports whether the lock package accepts name. It asks
// lock.New with a backend that is never used, which checks the name
// before anything else; the package exports no other way.
func validName(name string) bool {
	_, err := lock.New(name, lock.WithBackend(nopBackend{}))
	return !errors.Is(err, lock.ErrInvalidName) && err == nil
}

// nopBackend lets validName build a Coordinator without touching any
// file.
type nopBackend struct{}

func (nopBackend) Acquire(context.Context, lock.Request) (lock.Grant, error) {
	return nil, errors.ErrUnsupported
}

func (nopBackend) Holder(context.Context, string) (lock.Holder, error) {
	return lock.Holder{}, errors.ErrUnsupported
}
