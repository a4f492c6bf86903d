// Package logon checks that a logon server, the file share or HTTP
// endpoint an installer fetches its instructions from, is usable before
// the installer takes the lock it shares with its foreground poller.
//
// # Validate first, lock second
//
// The failure this package exists for: a background service took the
// shared lock and then went to a logon server that was unreachable,
// holding the lock for the whole network timeout, while the desktop poller
// told the user that a package was being installed when nothing was. The
// fix is to check the server first and take the lock only once the server
// has answered, so that a dead network never holds the lock. A Check has
// the plain shape func(context.Context) error so that it plugs into the
// lock package's precondition hook without either package importing the
// other:
//
//	check, err := logon.TCP("10.0.0.5:445", logon.WithTimeout(2*time.Second))
//	if err != nil {
//		return err // a mistake in the address or an option
//	}
//	c, err := lock.New("pcm-install", lock.WithPrecondition(check))
//
// # Checks
//
// TCP opens a connection, HTTP fetches a health URL and checks its status
// and optionally its body, Path checks a mounted share or directory and
// optionally a marker file in it, and Func wraps a function of the
// caller's. Each check is bounded by its context and by its own timeout
// (DefaultTimeout unless WithTimeout says otherwise), whichever ends
// first.
//
// # Configuration errors
//
// A constructor validates its arguments and options and returns a
// *ConfigError, matching ErrConfig, instead of a Check for a mistake (an
// address without a port, a negative timeout, a regular expression that
// does not compile), so a mistake shows when the program starts, not at
// the first probe, and a Check in hand is always well-formed:
//
//	logon.TCP: addr: address 10.0.0.5: missing port in address
//
// Options are typed by the checks they apply to: an Option (WithTimeout)
// applies to every check, an HTTPOption only to HTTP and a PathOption only
// to Path, so an option given to a check it does not apply to, such as
// logon.TCP(addr, logon.WithStatus(200)), does not compile.
//
// # Failures
//
// A failed check returns a *CheckError naming the server and carrying a
// Kind (KindTimeout, KindRefused, KindDNS, KindTLS, KindHTTPStatus, ...)
// and the underlying cause. Its message can be shown to a user as is:
//
//	logon server 10.0.0.5:445: connection refused
//
// A Kind is also the sentinel error of its class: errors.Is(err,
// logon.KindRefused) matches, as do context.DeadlineExceeded for timeouts
// and context.Canceled for cancellations.
//
// # Server lists
//
// A List holds several servers and finds a usable one, either trying them
// in order (Failover) or all at once taking the first to pass
// (FirstToAnswer, which cancels the others). When none passes, the error is
// an *AllFailedError listing every server's failure; errors.Is and
// errors.As see through it to each one.
//
// A List caches its outcome, so that a poller calling it every few seconds
// does not probe the network every few seconds. A success is reused for
// DefaultSuccessTTL and a failure for DefaultFailureTTL, measured from the
// end of the probe; WithSuccessTTL and WithFailureTTL change them, and 0
// turns caching of that outcome off. The cost of caching a success is that
// the server may have gone away since; choose the success TTL with that in
// mind. Calls made while a probe is running wait for that probe instead of
// starting another.
//
// The code that runs under the lock needs to know which server passed,
// for example to read its instructions from that server and not from one
// that was never checked. List.Validation returns a Validation whose Check
// method is the precondition and whose Server method reports the server
// that method validated. Nothing is kept in global state: each Validation
// belongs to the code that made it. Make one per acquisition:
//
//	v := list.Validation()
//	lease, err := c.Acquire(ctx, lock.WithPrecondition(v.Check), lock.WithRecheck())
//	...
//	srv, _ := v.Server() // the server checked for this acquisition
//
// A Validation reused for another acquisition (given to lock.New, say)
// validates the list again each time, so it still fails over, but its
// Server reports whichever acquisition checked last.
//
// # Cancellation
//
// Every check returns once its context is done, with a KindCanceled or
// KindTimeout error (or, from a List, an error wrapping ctx.Err()).
// Work that cannot be interrupted, such as a file system call on a dead
// share, is left to finish in its goroutine; see Path. A probe shared by
// several callers of a List runs with the deadline of the caller that
// started it and is canceled when every caller waiting on it has given up.
// An outcome caused by cancellation or by the callers' deadline is never
// cached, because it says nothing about the servers; a per-check timeout
// is a property of the server and is cached like any other failure.
//
// The package never logs or prints.
package logon
