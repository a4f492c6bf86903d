package lock

import (
	"context"
	"time"
)

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
		// releasing it (see retryBusy).
		for tries, since := 0, time.Now(); ; tries++ {
			if e := hf.busy(ctx, name); !retryBusy(ctx, e, since, tries) {
				return e
			}
			select {
			case sem <- struct{}{}:
				return nil
			default:
			}
		}
	}
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
