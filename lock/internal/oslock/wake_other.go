//go:build !linux

package oslock

import (
	"context"
	"errors"
	"os"

	"github.com/agentlock/agentlock/internal/record"
)

// releaseWake wakes processes sleeping in waitLockFile after a release,
// if any said they were. A releaser that finds a woken waiter still on
// its way skips the wake-up, and then must leave the flag set for the
// next release.
func releaseWake(f *os.File, page *record.Page) {
	if set, _ := page.TakeWaiting(); set && !wakeWaiters(f, page) {
		page.SetWaiting()
	}
}

// attempt is one round of an event-assisted wait (waitLockFile): it
// announces the caller as a waiter on the page (so that the next release
// wakes a sleeper) and makes one non-blocking attempt. done reports that
// the wait is over, with err nil if the lock was taken; otherwise the
// caller sleeps until a wake-up and calls attempt again.
func attempt(ctx context.Context, f *os.File, page *record.Page, l Waiter) (done bool, err error) {
	// A wake-up may be the cancellation itself: never take the lock
	// once ctx is done.
	if err := ctx.Err(); err != nil {
		return true, err
	}
	if l != nil && l.Moved() {
		return true, ErrMoved
	}
	if _, err := page.Arm(); err != nil {
		return true, err
	}
	err = tryLockFileContext(ctx, f)
	if errors.Is(err, errWouldBlock) {
		return false, nil
	}
	return true, err
}

// wakeSleepers has nobody to wake: here sleepers do not sleep on the
// page itself.
func wakeSleepers(*record.Page) {}
