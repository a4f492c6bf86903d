//go:build !linux

package lock

import (
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
