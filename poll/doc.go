// Package poll is the foreground side of a shared lock: a poller that
// wakes up every few seconds, tries the lock, does its work when the
// lock is free, and decides by policy whether to tell the user that
// someone else holds it.
//
// # Why a policy
//
// The classic failure this package exists to avoid: a desktop poller
// showed "A package is currently being installed in the background,
// please wait" whenever it could not get the lock, even when nothing was being installed; the service held the
// lock while it waited on an unreachable logon server, or for a short
// query. Users asked for the message to be removed or made switchable.
// The lock package fixes the cause (validate first, lock second, and
// publish why the lock is held); this package keeps the message and
// makes it a Policy:
//
//	Always()                     every busy cycle (the classic behaviour)
//	Never()                      the off switch
//	After(30*time.Second)        only once the lock has been busy that long
//	Purposes("installing*")      only for holders that say they install
//	RateLimit(time.Minute)       at most once a minute per holder
//	All(...), Any(...)           combinations
//	PolicyFromEnv(EnvNotify, def), PolicyFromFile(path, def), ParsePolicy(text, def)
//
// The text form read from $AGENTLOCK_NOTIFY or a file is documented at
// ParsePolicy, for example AGENTLOCK_NOTIFY="purpose=installing*;after=30s"
// or AGENTLOCK_NOTIFY=never. A bad value is reported as an error and
// the program's default policy is kept. The default of a Poller is
// DefaultPolicy: After(DefaultGrace).
//
// # Cycles
//
// A Poller (New, Run) tries the lock once per cycle with
// Coordinator.TryAcquire. Free: it runs the work function under the
// lease and releases it, even if the work panics (the panic then goes
// on up through Run: the Poller does not hide bugs). Busy: it builds an
// Event (holder, purpose, how long the lock has been busy, attempt,
// next try) and calls OnBusy if the policy lets it through. Other
// errors (a failed precondition, an I/O error): OnError, and
// exponential backoff with a cap. Waits have jitter and use one reused
// timer; Trigger starts a cycle at once ("check now"); a cancelled
// context stops Run at once if it is waiting, or at the end of the
// cycle.
//
// A program that only shows status passes a nil work function: the
// Poller then watches, reading the holder's record with
// Coordinator.Holder in each cycle and never taking the lock (OnFree
// says when it is free). A Poller that takes the lock, however briefly,
// makes the installer's TryAcquire find it busy now and then, and takes
// the Abandoned flag of a lease (see lock.Lease.Abandoned) that the
// installer needs after a crash.
//
// AcquireNotify is the blocking form, for a tool that must run
// something as soon as the installer is done: it waits for the lock
// like Coordinator.Acquire and notifies by policy meanwhile.
//
// # Callbacks, not logs
//
// The package never prints or logs. Everything it has to say goes to
// the callbacks: OnBusy, OnError, the work function, notify. They run
// on the goroutine that called Run (or AcquireNotify), one at a time.
package poll
