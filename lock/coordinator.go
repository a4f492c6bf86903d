package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/agentlock/agentlock/internal/proc"
	"github.com/agentlock/agentlock/internal/recheck"
)

// A Coordinator coordinates one named lock across goroutines, processes
// and (with a distributed backend) machines. It is safe for concurrent
// use. It is not a sync.Locker: taking the lock can fail (a precondition,
// a cancelled context, an unsafe lock file) and callers must look at
// the error.
type Coordinator struct {
	name    string
	backend Backend
	cfg     config

	// acquireFn is backend.Acquire, bound to the name if the backend can
	// look its lock up once (see binder).
	acquireFn func(context.Context, Request) (Grant, error)
}

// A binder is a Backend that can look up the state of one lock once,
// for a Coordinator, rather than by name at every acquisition.
type binder interface {
	bind(name string) func(context.Context, Request) (Grant, error)
}

// New returns a Coordinator for the lock called name. The name is
// checked first (see ValidName for the rules), then the
// options; an invalid name is an error matching ErrInvalidName and an
// invalid option one matching ErrInvalidOption, and in both cases no
// file is touched.
//
// New does not lock anything. With the file backend it checks the lock
// directory, so an unusable directory is reported here rather than at
// the first acquisition.
func New(name string, opts ...Option) (*Coordinator, error) {
	if err := validateName(name); err != nil {
		return nil, err
	}
	var cfg config
	if err := cfg.applyAll(opts, false); err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	b := cfg.backend
	if b == nil {
		fb, err := NewFileBackend(cfg.dir)
		if err != nil {
			return nil, err
		}
		b = fb
	} else if cfg.dir != "" {
		return nil, fmt.Errorf("lock %s: %w: WithDir applies only to the file backend", name, ErrInvalidOption)
	}
	c := &Coordinator{name: name, backend: b, cfg: cfg, acquireFn: b.Acquire}
	if bb, ok := b.(binder); ok {
		c.acquireFn = bb.bind(name)
	}
	return c, nil
}

// Name returns the lock's name.
func (c *Coordinator) Name() string { return c.name }

// Acquire runs the precondition, if any, and then waits for the lock
// until it is taken or ctx is done.
//
// If ctx is done first, Acquire returns an error that matches ctx.Err()
// (context.DeadlineExceeded or context.Canceled) and says how long it
// waited and who held the lock then:
//
//	lock pcm-install: gave up after 1s: held by pid 4242 (installing Office 97) since 04:31:07.123: context deadline exceeded
//
// errors.As gives a *BusyError with that holder (the zero Holder if the
// record could not be read in time). The lock is not held, then or
// later: no goroutine is left waiting, so there is no "phantom" hold
// after a cancelled wait.
//
// opts may set WithPurpose, WithPrecondition and WithRecheck for this
// acquisition only.
func (c *Coordinator) Acquire(ctx context.Context, opts ...Option) (*Lease, error) {
	return c.acquire(ctx, true, opts)
}

// TryAcquire runs the precondition, if any, and then makes one attempt
// to take the lock. If the lock is held it returns an error matching
// ErrBusy; errors.As gives a *BusyError saying who holds it. A lock
// found busy with nobody to name, as one is while its holder is
// between publishing its release and unlocking, is tried again for
// about 20 ms (never past ctx): a lock changing hands is taken, not
// reported busy.
//
// When the lock is free TryAcquire takes it, and the returned Lease
// must be released. A program that only wants to know who holds the
// lock calls Holder, which never takes it. A Lease dropped without
// Release is released only when the garbage collector finds it (see
// Lease), which may be much later: until then every other process sees
// the lock busy.
func (c *Coordinator) TryAcquire(ctx context.Context, opts ...Option) (*Lease, error) {
	return c.acquire(ctx, false, opts)
}

func (c *Coordinator) acquire(ctx context.Context, wait bool, opts []Option) (*Lease, error) {
	cfg, err := c.config(opts)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The start of the wait is only reported when a cancellable wait
	// gives up (gaveUp); other acquisitions do not read the clock for it.
	var start time.Time
	if wait && ctx.Done() != nil {
		start = time.Now()
	}
	if cfg.pre != nil {
		if err := c.runPrecondition(ctx, cfg.pre, "before locking"); err != nil {
			return nil, err
		}
	}
	// A wait makes its Lease, and puts it on the drop list, before it
	// locks, so that the moments the lock is held do not include that:
	// on a contended lock, another process can take it sooner after
	// Release. (Until the backend gives it a grant, the deferred
	// unguard takes it off the list if anything goes wrong.)
	var l *Lease
	if wait {
		l = &Lease{name: c.name}
		guard(l)
		defer func() {
			if l.g == nil {
				// Failed, or the backend panicked: never to be dropped
				// with a nil grant.
				unguard(l)
			}
		}()
	}
	g, err := c.acquireFn(ctx, c.request(cfg, wait))
	if err != nil {
		if wait && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, c.gaveUp(ctx, time.Since(start), err)
		}
		return nil, err
	}
	if l == nil {
		l = &Lease{name: c.name, g: g}
		guard(l)
	} else {
		l.g = g
	}
	if cfg.recheck {
		if err := c.runPrecondition(recheck.With(ctx), cfg.pre, "after locking"); err != nil {
			if rerr := l.Release(); rerr != nil {
				return nil, fmt.Errorf("%w (and releasing failed: %v)", err, rerr)
			}
			return nil, err
		}
	}
	return l, nil
}

// config returns the configuration of one acquisition: the
// Coordinator's, or a copy with opts applied (on the heap, since
// options see it: only acquisitions with options pay for it).
func (c *Coordinator) config(opts []Option) (*config, error) {
	if len(opts) == 0 {
		return &c.cfg, nil
	}
	own := c.cfg
	if err := own.applyAll(opts, true); err != nil {
		return nil, fmt.Errorf("lock %s: %w", c.name, err)
	}
	return &own, nil
}

// request is the Request of one acquisition with cfg.
func (c *Coordinator) request(cfg *config, wait bool) Request {
	id := proc.Self()
	return Request{
		Name: c.name,
		Wait: wait,
		Holder: Holder{
			PID:          id.PID,
			Host:         hostname(),
			Purpose:      cfg.purpose,
			ProcessStart: id.Start,
			BootID:       id.Boot,
		},
	}
}

// gaveUp builds the error of a wait that ended with its context: the
// context's error, and who held the lock when the wait gave up, read
// with a short context of its own since ctx is done.
func (c *Coordinator) gaveUp(ctx context.Context, waited time.Duration, err error) error {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), holderLookTimeout)
	defer cancel()
	hctx = context.WithValue(hctx, quickLook{}, true)
	h, herr := c.backend.Holder(hctx, c.name)
	if herr != nil {
		h = Holder{} // released meanwhile, or the record cannot be read
	}
	return &waitError{busy: &BusyError{Name: c.name, Holder: h}, waited: waited, err: err}
}

// quickLook, as a context key, asks the local backends' Holder not to
// wait for a holder's record beyond publishGrace: the look after a wait
// gave up must not keep Acquire much past its context.
type quickLook struct{}

// holderLookTimeout bounds the look at the holder after a wait gave up,
// so that Acquire returns promptly after its context ends even with a
// distributed backend that no longer answers.
const holderLookTimeout = 250 * time.Millisecond

// runPrecondition runs check, turning a panic into an error, and treats
// a check that returns after ctx is done as failed: its deadline is the
// acquisition's.
func (c *Coordinator) runPrecondition(ctx context.Context, check func(context.Context) error, phase string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &preconditionError{c.name, phase, fmt.Errorf("panic: %v", r)}
		}
	}()
	if err := check(ctx); err != nil {
		return &preconditionError{c.name, phase, err}
	}
	if err := ctx.Err(); err != nil {
		return &preconditionError{c.name, phase, err}
	}
	return nil
}

// Holder returns the record of the current holder, or an error matching
// ErrNotHeld if the lock is free.
//
// Holder never contends for the lock, not even for a moment: it reads
// the published record and checks that the process that published it
// is still running. A lock whose last holder died holding it is
// reported as an *AbandonedError, which matches ErrNotHeld. On Linux,
// where the system's lock table names a holder that has not published
// its record yet (microseconds after it locks, unless it is stopped or
// starved), Holder waits for the record up to a second, and then
// reports that holder with only PID and Host (at once, if the holder
// file cannot be read); if ctx ends first, it returns ctx.Err(). A record that fails its integrity check is an error
// matching ErrCorrupt; it never affects the lock itself.
func (c *Coordinator) Holder(ctx context.Context) (Holder, error) {
	if err := ctx.Err(); err != nil {
		return Holder{}, err
	}
	return c.backend.Holder(ctx, c.name)
}

var host struct {
	once sync.Once
	name string
}

func hostname() string {
	host.once.Do(func() {
		h, _ := os.Hostname()
		h = strings.ToValidUTF8(h, "?")
		for len(h) > 64 {
			// Cut at a character boundary: a record must hold UTF-8.
			_, size := utf8.DecodeLastRuneInString(h)
			h = h[:len(h)-size]
		}
		host.name = h
	})
	return host.name
}
