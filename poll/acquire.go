package poll

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/agentlock/agentlock/lock"
)

// AcquireNotify waits until the lock is free and takes it, like
// c.Acquire, and while it waits it looks at the holder once per
// interval (WithInterval, WithJitter) and calls notify with every busy
// event that the policy p lets through. It is for programs that must
// run something as soon as the installer is done, and want to say why
// they are waiting.
//
// If the lock is free at once, AcquireNotify returns without calling
// notify. Otherwise the first event (Attempt 1) is built from the
// TryAcquire that found the lock busy; the later ones from
// Coordinator.Holder, which never contends. A look that finds the lock
// free (it is being handed over) produces no event; one whose holder
// record cannot be read produces an event with a zero Holder.
//
// The waiting itself is c.Acquire's, which wakes as soon as the lock is
// released, not at the next look. It runs on a goroutine of its own
// while notify runs on the caller's; AcquireNotify always waits for
// that goroutine before it returns, so nothing is left behind, notify
// is never called after AcquireNotify returns, and, as with Acquire, a
// cancelled ctx leaves the lock not held. If the lock is taken just as
// ctx ends, the lease is returned: the caller must release it.
//
// opts may be WithInterval, WithJitter and WithLockOptions (passed to
// TryAcquire and Acquire, so a precondition runs before each).
func AcquireNotify(ctx context.Context, c *lock.Coordinator, p Policy, notify func(Event), opts ...Option) (*lock.Lease, error) {
	if c == nil || p == nil || notify == nil {
		return nil, fmt.Errorf("%w: AcquireNotify needs a Coordinator, a Policy and a notify function", ErrInvalidOption)
	}
	cfg, err := newConfig(opts, false)
	if err != nil {
		return nil, err
	}
	lease, err := c.TryAcquire(ctx, cfg.lockOpts...)
	var busy *lock.BusyError
	if !errors.As(err, &busy) {
		return lease, err
	}

	type result struct {
		lease *lock.Lease
		err   error
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan result, 1)
	go func() {
		l, err := c.Acquire(actx, cfg.lockOpts...)
		done <- result{l, err}
	}()
	// If notify or the policy panics, stop the wait and release what it
	// may have taken meanwhile before the panic goes on.
	finished := false
	defer func() {
		if !finished {
			cancel()
			if r := <-done; r.lease != nil {
				release(r.lease)
			}
		}
	}()

	start := cfg.clk.Now()
	d := cfg.jittered(cfg.interval)
	t := cfg.clk.NewTimer(d)
	defer t.Stop()
	attempt := 1
	emit := func(h lock.Holder, now, next time.Time) {
		if ev := newEvent(c.Name(), h, start, attempt, now, next); p.Notify(ev) {
			notify(ev)
		}
	}
	emit(busy.Holder, start, start.Add(d))
	for {
		select {
		case r := <-done:
			finished = true
			return r.lease, r.err
		case <-t.C():
		}
		h, err := c.Holder(actx)
		now := cfg.clk.Now()
		d = cfg.jittered(cfg.interval)
		t.Reset(d)
		if errors.Is(err, lock.ErrNotHeld) || actx.Err() != nil {
			continue
		}
		// The wait may have taken the lock meanwhile: then the record is
		// our own, and there is nothing to tell.
		select {
		case r := <-done:
			finished = true
			return r.lease, r.err
		default:
		}
		if err == nil && h.PID == os.Getpid() && h.Local() {
			continue
		}
		if err != nil {
			h = lock.Holder{} // busy, but the record cannot be read
		}
		attempt++
		emit(h, now, now.Add(d))
	}
}
