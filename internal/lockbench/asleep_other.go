//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package main

import "time"

// asleepMethod says how the hand-off waits for the waiter's sleep.
const asleepMethod = "the waiter is not seen asleep (this system shows no other process's system calls): the hold begins a fixed 5 ms after the waiter says it is about to wait"

// waitAsleep cannot see into another process here: it gives the waiter
// a fixed 5 ms to fall asleep and reports that it did not check.
func waitAsleep(pid int, limit time.Duration) bool {
	time.Sleep(5 * time.Millisecond)
	return false
}
