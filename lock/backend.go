package lock

import "context"

// A Backend provides named locks to a Coordinator. The file backend is
// built in; others (a Windows named mutex, a distributed engine) plug
// in through WithBackend, possibly from another module.
//
// The Coordinator validates names and options, runs preconditions and
// builds the holder record; a backend only locks, publishes and reads
// records, and issues tokens. Implementations must be safe for
// concurrent use and must pass the conformance suite in
// package locktest (github.com/agentlock/agentlock/lock/locktest).
type Backend interface {
	// Acquire takes the lock named req.Name. With req.Wait it blocks
	// until the lock is taken or ctx is done, returning ctx.Err()
	// (possibly wrapped) in the latter case, and it must not hold the
	// lock afterwards, not even briefly. Without req.Wait it makes one
	// attempt and returns a *BusyError if the lock is held.
	//
	// On success the backend has published req.Holder with its Token
	// and Since fields set: Token to a fencing token greater than every
	// token it issued before for this name, Since to the time of
	// acquisition.
	Acquire(ctx context.Context, req Request) (Grant, error)

	// Holder returns the record of the current holder of the named
	// lock without contending for it, or an error matching ErrNotHeld
	// if the lock is free.
	Holder(ctx context.Context, name string) (Holder, error)
}

// A Request asks a Backend for a lock.
type Request struct {
	Name   string // validated lock name
	Wait   bool   // block until the lock is free
	Holder Holder // record to publish (Token and Since are set by the backend)
}

// A Grant is one acquisition made by a Backend.
type Grant interface {
	// Holder returns the record as currently published.
	Holder() Holder

	// Abandoned reports whether the previous holder died while holding
	// the lock (or left a record that makes this impossible to rule
	// out).
	Abandoned() bool

	// SetPurpose republishes the record with a new purpose.
	SetPurpose(purpose string) error

	// Release gives the lock up. It is called at most once.
	Release() error

	// Lost returns a channel that is closed if the backend loses the
	// lock while it is held (a distributed backend whose session
	// expired). Backends that cannot lose a held lock return nil.
	Lost() <-chan struct{}
}
