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
// opts are Options: WithInterval, WithJitter and WithLockOptions (passed
// to TryAcquire and Acquire, so a precondition runs before each). The
// options only a Poller has are PollerOptions and do not compile here.
func AcquireNotify(ctx context.Context, c *lock.Coordinator, p Policy, notify func(Event), opts ...Option) (*lock.Lease, error) {
	if c == nil || p == nil || notify == nil {
		return nil, fmt.Errorf("%w: AcquireNotify needs a Coordinator, a Policy and a notify function", ErrInvalidOption)
	}
	cfg, err := newConfig(asPollerOptions(opts))
	if err != nil {
		return nil, err
	}
	lease, err := c.TryAcquire(ctx, cfg.lockOpts...)
	var busy *lock.BusyError
	if !errors.As(err, &busy) {
		return lease, err
	}
	w := &notifyWait{c: c, cfg: &cfg, p: p, notify: notify}
	return w.wait(ctx, busy.Holder)
}

func asPollerOptions(opts []Option) []PollerOption {
	p := make([]PollerOption, len(opts))
	for i, o := range opts {
		p[i] = o
	}
	return p
}

// notifyWait is one AcquireNotify past its first, busy, TryAcquire.
type notifyWait struct {
	c       *lock.Coordinator
	cfg     *config
	p       Policy
	notify  func(Event)
	start   time.Time // the first busy look
	attempt int
}

type acquired struct {
	lease *lock.Lease
	err   error
}

// wait runs c.Acquire on a goroutine of its own and, until it returns,
// looks at the holder once per interval on the caller's.
func (w *notifyWait) wait(ctx context.Context, first lock.Holder) (*lock.Lease, error) {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan acquired, 1)
	go func() {
		l, err := w.c.Acquire(actx, w.cfg.lockOpts...)
		done <- acquired{l, err}
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

	w.start = time.Now()
	d := w.cfg.jittered(w.cfg.interval)
	t := newTimer(d)
	defer t.Stop()
	w.emit(first, w.start, w.start.Add(d))
	for {
		select {
		case r := <-done:
			finished = true
			return r.lease, r.err
		case <-t.C():
		}
		h, tell := w.look(actx)
		now, d := time.Now(), w.cfg.jittered(w.cfg.interval)
		t.Reset(d)
		// The wait may have taken the lock meanwhile: then the lock is
		// ours, and there is nothing to tell (done is buffered, so a
		// result waiting in it shows in its length).
		if tell && len(done) == 0 {
			w.emit(h, now, now.Add(d))
		}
	}
}

// look reads the holder, and says whether it is worth an event: not
// when the lock is free (being handed over) or the wait is over, nor
// when the record is this process's own (the wait has just taken the
// lock). A record that cannot be read gives a zero Holder.
func (w *notifyWait) look(ctx context.Context) (lock.Holder, bool) {
	h, err := w.c.Holder(ctx)
	switch {
	case errors.Is(err, lock.ErrNotHeld) || ctx.Err() != nil:
		return h, false
	case err != nil:
		return lock.Holder{}, true // busy, but the record cannot be read
	}
	return h, !(h.PID == os.Getpid() && h.Local())
}

// emit passes the event of a busy look to notify if the policy lets it
// through.
func (w *notifyWait) emit(h lock.Holder, now, next time.Time) {
	w.attempt++
	if ev := newEvent(w.c.Name(), h, w.start, w.attempt, now, next); w.p.Notify(ev) {
		w.notify(ev)
	}
}
