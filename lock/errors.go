package lock

import (
	"errors"
	"fmt"
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
	ErrUnsafePath = errors.New("unsafe path")

	// ErrCorrupt reports data that failed its integrity check: a
	// holder record, or a guarded file that is torn, truncated or not
	// written by this package.
	ErrCorrupt = errors.New("corrupt data")

	// ErrLost reports use of a lease whose lock was lost while it was
	// held (Lease.Lost is closed): with the file backend, the lock file
	// or the holder file was removed or replaced. Release still gives
	// up what is left of the lock and returns it.
	ErrLost = errors.New("lock lost")
)

// A BusyError is returned by TryAcquire when the lock is held.
// It matches ErrBusy.
type BusyError struct {
	Name string // the lock's name

	// Holder is the record the holder published. It is the zero
	// Holder when the holder had not published one yet (a window of
	// microseconds after it took the lock) or the record could not be
	// read. On Linux, a holder that locked the file without this
	// package is reported with only PID and Foreign set.
	Holder Holder
}

func (e *BusyError) Error() string {
	h := e.Holder
	if h.PID == 0 {
		return fmt.Sprintf("lock %s: busy", e.Name)
	}
	if h.Foreign {
		return fmt.Sprintf("lock %s: busy: held by pid %d, which locked the file without this package (no record)", e.Name, h.PID)
	}
	if h.Purpose == "" {
		return fmt.Sprintf("lock %s: busy: held by pid %d on %s since %s", e.Name, h.PID, h.Host, h.Since.Format("15:04:05.000"))
	}
	return fmt.Sprintf("lock %s: busy: held by pid %d on %s since %s: %s", e.Name, h.PID, h.Host, h.Since.Format("15:04:05.000"), h.Purpose)
}

// Is reports whether target is ErrBusy.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

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
