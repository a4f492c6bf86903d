// Package poll is the foreground side of a shared lock: a poller that
// looks at the lock every few seconds and decides by policy whether to
// tell the user that someone else holds it.
//
//	p, err := poll.New(c, nil, // nil work: watch only, never take the lock
//		poll.WithPolicy(poll.After(30*time.Second)),
//		poll.OnBusy(func(e poll.Event) {
//			show("%s for %v", e.Holder.Purpose, e.Busy.Round(time.Second))
//		}),
//		poll.OnFree(hide))
//	...
//	err = p.Run(ctx) // until ctx ends; p.Trigger() looks at once
//
// A program that only shows status passes a nil work function, as
// above: the Poller then reads the holder's record with
// Coordinator.Holder and never takes the lock, so it can never make the
// installer find the lock busy, nor take the Abandoned flag of a lease
// (see lock.Lease.Abandoned) that the installer needs after a crash.
// With a work function, each cycle that finds the lock free runs it
// under the lease and releases the lease afterwards, even if work
// panics (the panic then goes on up through Run).
//
// # Why a policy
//
// A poller that said "a package is being installed in the background"
// whenever it could not get the lock said so when nothing was being
// installed: the service held the lock for a short query, or while it
// waited on an unreachable logon server. This package keeps the message
// and makes it a Policy:
//
//	Always()                     every busy cycle
//	Never()                      the off switch
//	After(30*time.Second)        only once the lock has been busy that long
//	Purposes("installing*")      only for holders that say they install
//	RateLimit(time.Minute)       at most once a minute per holder
//	All(...), Any(...)           combinations
//	PolicyFromEnv(EnvNotify, def), PolicyFromFile(path, def), ParsePolicy(text, def)
//
// The text form is documented at ParsePolicy, for example
// AGENTLOCK_NOTIFY="purpose=installing*;after=30s" or
// AGENTLOCK_NOTIFY=never; a bad value is an error and the program's
// default is kept. A Poller's default is DefaultPolicy,
// After(DefaultGrace).
//
// # What you can rely on
//
// Cycles are spaced by an interval with jitter, one timer reused. An
// error from the lock (a failed precondition, an I/O error) goes to
// OnError and backs off exponentially up to a cap; an error from work
// goes to OnError without backoff. A cancelled context stops Run at once if it is waiting, or at
// the end of the cycle. AcquireNotify is the blocking form: it waits
// for the lock like Coordinator.Acquire and notifies by policy
// meanwhile, and leaves nothing running when it returns.
//
// The package never prints or logs. Everything it has to say goes to
// the callbacks (OnBusy, OnFree, OnError, the work function, notify),
// which run on the goroutine that called Run or AcquireNotify, one at a
// time.
package poll
