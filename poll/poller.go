package poll

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/agentlock/agentlock/lock"
)

// A Poller runs cycles on a lock until its context ends. Each cycle
// tries the lock once (Coordinator.TryAcquire, so the coordinator's
// precondition runs first):
//
//   - free: it calls OnFree, runs the work function under the lease,
//     then releases the lease;
//   - busy: it builds an Event and calls OnBusy if the Policy lets the
//     event through;
//   - any other error: it calls OnError and backs off (WithBackoff).
//
// A watch-only Poller (New with a nil work function) never takes the
// lock: each cycle reads the holder with Coordinator.Holder instead,
// and calls OnFree when there is none.
//
// The next cycle starts one interval (with jitter) after a cycle ends,
// or the backoff delay after an error, or at once after Trigger. One
// timer is reused for all the waits.
//
// Run, the work function and the callbacks run on the goroutine that
// called Run, one at a time, never concurrently with each other.
// Trigger may be called from any goroutine. A Poller must not be
// copied.
type Poller struct {
	c       *lock.Coordinator
	work    func(context.Context, *lock.Lease) error
	cfg     config
	trigger chan struct{}
	running atomic.Bool
}

// New returns a Poller that runs work, under the lease, in every cycle
// that finds the lock free. The options are checked here: a bad value
// is an error matching ErrInvalidOption.
//
// With a nil work function the Poller only watches: each cycle reads
// the holder's record (Coordinator.Holder), which never contends for
// the lock, feeds a busy look to the Policy and OnBusy as above, and
// calls OnFree when the lock is free. It never holds the lock, so it
// can never make the holder's next TryAcquire find the lock busy, never
// takes a Lease's Abandoned flag from the program that must repair
// after a crash, and needs no right to the lock's files beyond reading.
// A program that only shows status should watch. WithLockOptions is
// refused for a watch-only Poller, as there is no acquisition to apply
// them to, and the coordinator's precondition is not run.
//
// The work function gets Run's context and the lease. It may release
// the lease itself; otherwise the Poller releases it when work returns,
// and also when work panics, before the panic goes on up through Run.
// A panic is a bug, and the Poller does not hide it; a program that
// wants to keep polling after one should recover in work. The error
// work returns goes to OnError and does not cause backoff: the lock was
// reachable.
func New(c *lock.Coordinator, work func(ctx context.Context, lease *lock.Lease) error, opts ...PollerOption) (*Poller, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: nil Coordinator", ErrInvalidOption)
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if work == nil && len(cfg.lockOpts) > 0 {
		return nil, fmt.Errorf("%w: WithLockOptions needs a work function: a watch-only Poller never acquires the lock", ErrInvalidOption)
	}
	return &Poller{c: c, work: work, cfg: cfg, trigger: make(chan struct{}, 1)}, nil
}

// Trigger asks for a cycle now, for example because the user clicked
// "check now". It never blocks. Triggers coalesce: any number of calls
// before the next cycle starts cause one cycle. A Trigger during a
// cycle causes one more cycle right after it, and a Trigger while Run
// is not running makes the next Run start with a cycle.
func (p *Poller) Trigger() {
	select {
	case p.trigger <- struct{}{}:
	default:
	}
}

// Run runs cycles until ctx is done and returns ctx.Err(). If ctx ends
// while Run waits for the next cycle, Run returns at once; if it ends
// during a cycle, Run returns when the cycle does (the work function
// should watch ctx). Run also returns, with that error, if the lock
// refuses the options given by WithLockOptions (an error matching
// lock.ErrInvalidOption): retrying would not help.
//
// Run may be called again after it returns; each Run starts afresh
// (attempt numbers, backoff). Calling Run while it is running panics.
func (p *Poller) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		panic("poll: Run called while the Poller is running")
	}
	defer p.running.Store(false)

	first := time.Duration(0)
	if !p.cfg.immediate {
		first = p.cfg.jittered(p.cfg.interval)
	}
	t := newTimer(first)
	defer t.Stop()
	var s runState
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C():
		case <-p.trigger:
		}
		// This cycle answers every Trigger made before it starts.
		select {
		case <-p.trigger:
		default:
		}
		if err := p.cycle(ctx, &s, t); err != nil {
			return err
		}
	}
}

// runState is what a Run remembers between cycles.
type runState struct {
	busyStart time.Time // when the current run of busy cycles began; zero if none
	attempt   int       // busy cycles in the current run
	errs      int       // errors in a row
}

// cycle runs one cycle and resets t for the next. It returns an error
// only when Run must stop.
func (p *Poller) cycle(ctx context.Context, s *runState, t timer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.work == nil {
		return p.watch(ctx, s, t)
	}
	lease, err := p.c.TryAcquire(ctx, p.cfg.lockOpts...)
	now := time.Now()
	var busy *lock.BusyError
	switch {
	case err == nil:
		*s = runState{}
		if err := ctx.Err(); err != nil {
			p.report(release(lease))
			return err
		}
		if p.cfg.onFree != nil {
			p.cfg.onFree()
		}
		p.report(p.runWork(ctx, lease))
		t.Reset(p.cfg.jittered(p.cfg.interval))

	case errors.As(err, &busy):
		p.busy(s, busy.Holder, now, t)

	case ctx.Err() != nil:
		// Cancelled during the precondition or the attempt.
		return ctx.Err()

	case errors.Is(err, lock.ErrInvalidOption):
		return err

	default:
		*s = runState{errs: s.errs + 1}
		p.report(err)
		t.Reset(p.cfg.backoff(s.errs))
	}
	return nil
}

// watch is the cycle of a watch-only Poller: a look at the holder's
// record, never an attempt to take the lock.
func (p *Poller) watch(ctx context.Context, s *runState, t timer) error {
	h, err := p.c.Holder(ctx)
	now := time.Now()
	switch {
	case err == nil:
		p.busy(s, h, now, t)
	case errors.Is(err, lock.ErrNotHeld):
		*s = runState{}
		if p.cfg.onFree != nil {
			p.cfg.onFree()
		}
		t.Reset(p.cfg.jittered(p.cfg.interval))
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		// A record that cannot be read (ErrCorrupt, an I/O error) does
		// not say whether the lock is held: report it and back off.
		*s = runState{errs: s.errs + 1}
		p.report(err)
		t.Reset(p.cfg.backoff(s.errs))
	}
	return nil
}

// busy handles a look that found the lock held by h.
func (p *Poller) busy(s *runState, h lock.Holder, now time.Time, t timer) {
	s.errs = 0
	if s.attempt == 0 {
		s.busyStart = now
	}
	s.attempt++
	d := p.cfg.jittered(p.cfg.interval)
	ev := newEvent(p.c.Name(), h, s.busyStart, s.attempt, now, now.Add(d))
	if p.cfg.policy.Notify(ev) && p.cfg.onBusy != nil {
		p.cfg.onBusy(ev)
	}
	// The wait starts when the callback returns: a notification the
	// user takes time to dismiss must not be followed by the next at
	// once.
	t.Reset(d)
}

// runWork runs the work function and releases the lease, also when the
// work panics (the panic then continues).
func (p *Poller) runWork(ctx context.Context, lease *lock.Lease) (err error) {
	defer func() {
		err = errors.Join(err, release(lease))
	}()
	return p.work(ctx, lease)
}

// release releases lease, ignoring ErrReleased: the work function may
// have released it already.
func release(lease *lock.Lease) error {
	if err := lease.Release(); err != nil && !errors.Is(err, lock.ErrReleased) {
		return err
	}
	return nil
}

func (p *Poller) report(err error) {
	if err != nil && p.cfg.onError != nil {
		p.cfg.onError(err)
	}
}
