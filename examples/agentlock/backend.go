package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/agentlock/agentlock/lock"
)

// backendFlags are the flags every command has: which lock directory
// and which backend.
type backendFlags struct {
	dir   string
	mutex bool
	scope string
}

func (b *backendFlags) register(f *flags) {
	f.StringVar(&b.dir, "dir", "", "lock `DIR`ectory (default: the lock package's system-wide directory)")
	f.BoolVar(&b.mutex, "mutex", false, "use the named-mutex backend (a kernel mutex on Windows, flock(2) elsewhere)")
	f.StringVar(&b.scope, "scope", "global", "namespace of the named mutex: `local` or global (with -mutex)")
}

// check reports a usage mistake in the backend flags, or "".
func (b *backendFlags) check(f *flags) string {
	if b.scope != "global" && b.scope != "local" {
		return fmt.Sprintf("invalid value %q for flag -scope: want local or global", b.scope)
	}
	if f.set("scope") && !b.mutex {
		return "flag -scope needs -mutex"
	}
	return ""
}

// parse parses args into f and checks the backend flags: it returns
// the status to exit with on -h or a usage mistake, or -1.
func (b *backendFlags) parse(f *flags, args []string) int {
	if st := f.parse(args); st >= 0 {
		return st
	}
	if msg := b.check(f); msg != "" {
		return f.usageError("%s", msg)
	}
	return -1
}

// options returns the lock options that select the backend.
func (b *backendFlags) options() ([]lock.Option, error) {
	if !b.mutex {
		return []lock.Option{lock.WithDir(b.dir)}, nil
	}
	scope := lock.ScopeGlobal
	if b.scope == "local" {
		scope = lock.ScopeLocal
	}
	mopts := []lock.MutexOption{lock.WithScope(scope)}
	if b.dir != "" {
		mopts = append(mopts, lock.WithMutexDir(b.dir))
	}
	be, err := lock.NewNamedMutexBackend(mopts...)
	if err != nil {
		return nil, err
	}
	return []lock.Option{lock.WithBackend(be)}, nil
}

// coordinator returns the coordinator of name. An invalid name is a
// usage error: it reports it and returns the status to exit with; it
// returns -1 with the coordinator otherwise, and failed for other
// errors.
func (b *backendFlags) coordinator(f *flags, name string, failed int, opts ...lock.Option) (*lock.Coordinator, int) {
	bopts, err := b.options()
	if err != nil {
		return nil, f.fail(failed, err)
	}
	c, err := lock.New(name, append(bopts, opts...)...)
	switch {
	case errors.Is(err, lock.ErrInvalidName):
		return nil, f.usageError("NAME: %v", err)
	case errors.Is(err, lock.ErrInvalidOption):
		return nil, f.usageError("%v", err)
	case err != nil:
		return nil, f.fail(failed, err)
	}
	return c, -1
}

// describe says who h is in one line, for messages on standard error.
func describe(h lock.Holder, now time.Time) string {
	if h.PID == 0 {
		return "a holder with no record (it has only just taken the lock, or locks without this package)"
	}
	if h.Foreign {
		return fmt.Sprintf("pid %d %s", h.PID, foreignNote)
	}
	s := fmt.Sprintf("pid %d on %s", h.PID, h.Host)
	if h.Purpose != "" {
		s += fmt.Sprintf(" (%q)", h.Purpose)
	}
	if !h.Since.IsZero() {
		s += fmt.Sprintf(", since %s (%s ago)", h.Since.Local().Format("2006-01-02 15:04:05"), age(h, now))
	}
	return s
}

// foreignNote follows the pid of a holder that locked the lock file
// without this package, which only the system's lock table shows.
const foreignNote = "(foreign: locked without agentlock, no record)"

// age is how long h has held the lock, rounded for people. A holder on
// another machine has a Since from that machine's clock; the age is
// then only as good as the two clocks' agreement.
func age(h lock.Holder, now time.Time) time.Duration {
	d := now.Sub(h.Since)
	switch {
	case d < 0:
		return 0
	case d < time.Second:
		return d.Round(time.Millisecond)
	case d < time.Minute:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}
