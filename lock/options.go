package lock

import (
	"context"
	"fmt"

	"github.com/agentlock/agentlock/internal/record"
)

// An Option configures a Coordinator (in New) or one acquisition (in
// Acquire and TryAcquire, where only WithPurpose, WithPrecondition and
// WithRecheck are accepted). Options are checked when they are used;
// an invalid one is an error matching ErrInvalidOption, never ignored.
type Option struct {
	name       string
	perAcquire bool
	apply      func(*config) error
}

type config struct {
	dir     string
	backend Backend
	purpose string
	pre     func(context.Context) error
	recheck bool
}

// WithDir sets the directory holding the lock's files for the file
// backend. The directory must exist; it is not created. A directory
// that anyone may write must have the sticky bit set (as /tmp does),
// else New returns an error matching ErrUnsafePath. Without WithDir the
// default directory of the platform is used (see the package
// documentation).
func WithDir(dir string) Option {
	return Option{name: "WithDir", apply: func(c *config) error {
		if dir == "" {
			return fmt.Errorf("empty directory")
		}
		c.dir = dir
		return nil
	}}
}

// WithPurpose sets what holders say they are doing, such as "querying"
// or "installing Office 97". Given to New it applies to every
// acquisition; given to Acquire or TryAcquire it applies to that one.
// A purpose is at most 256 bytes of UTF-8 without NUL bytes.
func WithPurpose(purpose string) Option {
	return Option{name: "WithPurpose", perAcquire: true, apply: func(c *config) error {
		if err := record.CheckPurpose(purpose); err != nil {
			return err
		}
		c.purpose = purpose
		return nil
	}}
}

// WithPrecondition sets a check that runs before the lock is taken,
// with the context of the acquisition. If it returns an error (or
// panics, or returns after that context is done), nothing is locked or
// written and the acquisition returns an error matching
// ErrPrecondition that also wraps the check's error.
//
// This is how "validate first, lock second" is spelled: a check of the
// logon server (see package logon) runs while the lock is still free,
// so a dead network can never keep the lock held. Given to New the
// check applies to every acquisition; given to Acquire it replaces the
// coordinator's for that acquisition.
func WithPrecondition(check func(context.Context) error) Option {
	return Option{name: "WithPrecondition", perAcquire: true, apply: func(c *config) error {
		if check == nil {
			return fmt.Errorf("nil check")
		}
		c.pre = check
		return nil
	}}
}

// WithRecheck makes the acquisition run the precondition a second time
// right after the lock is taken (closing the time-of-check to
// time-of-use gap). If that second run fails, the lock is released at
// once and the acquisition returns an error matching ErrPrecondition.
// It requires a precondition. The second run's context tells a
// logon.Validation that it is the re-check, so that it probes the
// server it validated before locking rather than the whole list.
func WithRecheck() Option {
	return Option{name: "WithRecheck", perAcquire: true, apply: func(c *config) error {
		c.recheck = true
		return nil
	}}
}

// WithBackend sets the backend that provides the lock. The default is
// the file backend (see NewFileBackend) on the directory given by
// WithDir.
func WithBackend(b Backend) Option {
	return Option{name: "WithBackend", apply: func(c *config) error {
		if b == nil {
			return fmt.Errorf("nil backend")
		}
		c.backend = b
		return nil
	}}
}

func (c *config) applyAll(opts []Option, perAcquire bool) error {
	for _, o := range opts {
		if o.apply == nil {
			return fmt.Errorf("%w: zero Option", ErrInvalidOption)
		}
		if perAcquire && !o.perAcquire {
			return fmt.Errorf("%w: %s applies to New, not to one acquisition", ErrInvalidOption, o.name)
		}
		if err := o.apply(c); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalidOption, o.name, err)
		}
	}
	if c.recheck && c.pre == nil {
		return fmt.Errorf("%w: WithRecheck needs WithPrecondition", ErrInvalidOption)
	}
	return nil
}
