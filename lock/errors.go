package lock

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agentlock/agentlock/lock/internal/oslock"
)

// Sentinel errors. Check them with errors.Is: the errors returned by
// this package wrap them and carry details.
var (
	// ErrBusy reports that TryAcquire found the lock held. The error
	// is a *BusyError that says by whom.
	ErrBusy = errors.New("busy")

	// ErrNotHeld reports that Holder found the lock free (or held only
	// by a process that has since died).
	ErrNotHeld = errors.New("not held")

	// ErrReleased reports use of a lease after Release.
	ErrReleased = errors.New("lease released")

	// ErrPrecondition reports that the precondition failed, so the
	// lock was not taken (or, with WithRecheck, was released at once).
	// The error also wraps the precondition's own error.
	ErrPrecondition = errors.New("precondition failed")

	// ErrInvalidName reports a lock name that New refuses.
	ErrInvalidName = errors.New("invalid name")

	// ErrInvalidOption reports an option value that New or Acquire
	// refuses.
	ErrInvalidOption = errors.New("invalid option")

	// ErrUnsafePath reports a lock directory or file that could let
	// another user subvert the lock: a symbolic link, a hard link, a
	// file that is not a regular file, or a directory that anyone may
	// write without the sticky bit or that an untrusted user owns.
	// Nothing is locked or written when it is returned.
	ErrUnsafePath = errUnsafePath()

	// ErrCorrupt reports data that failed its integrity check: a
	// holder record, or a guarded file that is torn, truncated or not
	// written by this package.
	ErrCorrupt = errors.New("corrupt data")

	// ErrLost reports use of a lease whose lock was lost while it was
	// held (Lease.Lost is closed): with the file backend, the lock file
	// was removed or replaced. (A holder file removed or replaced alone
	// loses nothing: the holder publishes on the new one.) Release still
	// gives up what is left of the lock and returns it.
	ErrLost = errors.New("lock lost")
)

// A BusyError is returned by TryAcquire when the lock is held.
// It matches ErrBusy.
type BusyError struct {
	Name string // the lock's name

	// Holder is the record the holder published. Between taking the
	// lock and publishing it (microseconds, unless the holder is
	// stopped or starved) a holder has no record: on Linux it is then
	// reported with only PID and Host, read from the system's lock
	// table, and elsewhere as the zero Holder, as when the record
	// cannot be read. On Linux, a holder that locked the file without
	// this package is reported with only PID and Foreign set.
	Holder Holder
}

// Error says who holds the lock as "held by pid N (purpose) since T",
// naming the host only when it is not this machine.
func (e *BusyError) Error() string {
	if e.Holder.PID == 0 {
		return fmt.Sprintf("lock %s: busy", e.Name)
	}
	if e.Holder.Foreign {
		return fmt.Sprintf("lock %s: busy: held by pid %d, which locked the file without this package (no record)", e.Name, e.Holder.PID)
	}
	return fmt.Sprintf("lock %s: busy: held by %s", e.Name, e.Holder.brief())
}

// Is reports whether target is ErrBusy.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// An AbandonedError is what Holder returns when the last record says
// held but its holder has died: the operating system released that
// holder's lock, and Last is the record it left. What the lock guards
// may be half-written; the Lease of the next acquisition reports
// Abandoned. It matches ErrNotHeld, with ErrNotHeld's limits: a holder
// that publishes no record may hold the lock meanwhile where the system
// cannot name it (see NewFileBackend).
type AbandonedError struct {
	Name string // the lock's name
	Last Holder // the record of the holder that died
}

func (e *AbandonedError) Error() string {
	return fmt.Sprintf("lock %s: %v (its last holder, pid %d, died)", e.Name, ErrNotHeld, e.Last.PID)
}

// Is reports whether target is ErrNotHeld.
func (e *AbandonedError) Is(target error) bool { return target == ErrNotHeld }

// preconditionError wraps both ErrPrecondition and the cause.
type preconditionError struct {
	name  string
	phase string
	err   error
}

func (e *preconditionError) Error() string {
	return fmt.Sprintf("lock %s: precondition failed %s: %v", e.name, e.phase, e.err)
}

func (e *preconditionError) Unwrap() []error { return []error{ErrPrecondition, e.err} }

// waitError is what Acquire returns when its context ends while it
// waits: the context's error and, for errors.As, a *BusyError with the
// last holder seen, so that the message says who kept the lock.
type waitError struct {
	busy   *BusyError
	waited time.Duration
	err    error // ctx.Err(), possibly wrapped
}

func (e *waitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lock %s: gave up after %v", e.busy.Name, roundWait(e.waited))
	if e.busy.Holder.PID != 0 {
		b.WriteString(": held by " + e.busy.Holder.brief())
	}
	b.WriteString(": " + e.err.Error())
	return b.String()
}

func (e *waitError) Unwrap() []error { return []error{e.err, e.busy} }

// roundWait rounds a wait for a message: to the millisecond under a
// second, to a tenth of a second above.
func roundWait(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}

// brief is the short form errors use: "pid 4242 (installing Office 97)
// since 04:31:07.123", with the host only when it is not this machine.
func (h Holder) brief() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pid %d", h.PID)
	if h.Host != "" && !h.Local() {
		b.WriteString(" on " + h.Host)
	}
	if h.Purpose != "" {
		fmt.Fprintf(&b, " (%s)", h.Purpose)
	}
	if !h.Since.IsZero() {
		b.WriteString(" since " + h.Since.Format("15:04:05.000"))
	}
	return b.String()
}

// errUnsafePath is the sentinel that the operating-system code returns
// too, so that the exported name and its value are one error.
func errUnsafePath() error { return oslock.ErrUnsafePath }
