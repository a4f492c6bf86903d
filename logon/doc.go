// Package logon checks that a logon server, the file share or HTTP
// endpoint an installer fetches its instructions from, is usable, so
// that the installer takes the lock it shares with its foreground
// poller only once a server has answered and a dead network never
// holds the lock:
//
//	check, err := logon.TCP("10.0.0.5:445", logon.WithTimeout(2*time.Second))
//	if err != nil {
//		return err // a mistake in the address or an option
//	}
//	c, err := lock.New("pcm-install", lock.WithPrecondition(check))
//
// A Check has the plain shape func(context.Context) error, so it plugs
// into lock.WithPrecondition without either package importing the
// other. TCP opens a connection, HTTP fetches a health URL and checks
// its status and optionally its body, Path checks a mounted share and
// optionally a marker file in it, and Func wraps a function of the
// caller's.
//
// Several servers go in a List, tried in order (Failover) or all at
// once (FirstToAnswer). An installer that must know which server passed
// makes a Validation per acquisition:
//
//	v := list.Validation()
//	lease, err := c.Acquire(ctx, lock.WithPrecondition(v.Check), lock.WithRecheck())
//	...
//	srv, _ := v.Server() // the server checked for this acquisition
//
// # What you can rely on
//
// A mistake shows when the program starts: a constructor returns a
// *ConfigError, matching ErrConfig, instead of a Check (an address
// without a port, a negative timeout, a pattern that does not compile),
// and an option given to a check it does not apply to, such as
// logon.TCP(addr, logon.WithStatus(200)), does not compile.
//
// A failed check is a *CheckError naming the server, whose message can
// be shown to a user as is ("logon server 10.0.0.5:445: connection
// refused"), and whose Kind is also a sentinel: errors.Is(err,
// logon.KindRefused) matches, as do context.DeadlineExceeded for
// timeouts and context.Canceled for cancellations. When no server of a
// List passes, the error is an *AllFailedError that errors.Is and
// errors.As see through to each server's failure.
//
// Every check returns once its context or its own timeout
// (DefaultTimeout unless WithTimeout) ends. Work that cannot be
// interrupted, such as a file system call on a dead share, finishes in
// its goroutine later (see Path).
//
// A List caches its outcome, so a poller calling it every few seconds
// does not probe the network every few seconds: a success for
// DefaultSuccessTTL, a failure for DefaultFailureTTL, from the end of
// the probe (WithSuccessTTL, WithFailureTTL; 0 turns caching off). A
// cached success may outlive the server, so choose its TTL with that in
// mind. Callers that arrive while a probe runs share it: each gives up
// at its own deadline, and the probe, bounded by its per-check
// timeouts, is cancelled when every caller waiting on it has given up.
// An outcome caused by
// cancellation or the callers' deadline is never cached, since it says
// nothing about the servers; a per-check timeout is cached like any
// other failure.
//
// The package never logs or prints.
package logon
