package lock

import "context"

// takeTurn takes the in-process semaphore sem of a lock, on which the
// goroutines of one process take turns before they make a system call
// on the lock. Without wait it does not block: if another goroutine
// holds sem, the lock is busy and the error is hf's BusyError for name.
// It fails, holding nothing, with ctx.Err() if ctx is done first.
func takeTurn(ctx context.Context, sem chan struct{}, name string, wait bool, hf *holderFile) error {
	select {
	case sem <- struct{}{}:
		return nil
	default:
	}
	if !wait {
		// Another goroutine of this process holds the lock, or is
		// releasing it (see busyUnless).
		relock := func() bool {
			select {
			case sem <- struct{}{}:
				return true
			default:
				return false
			}
		}
		if e := hf.busyUnless(ctx, name, relock); e != nil {
			return e
		}
		return nil
	}
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
