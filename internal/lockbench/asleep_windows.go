package main

import "time"

// asleepMethod says how the hand-off waits for the waiter's sleep.
// Windows tells another process's thread states
// (NtQuerySystemInformation), but a thread waiting for the lock looks
// like the runtime's idle threads, and Wine reports the same state for
// every thread; so the waiter is given a fixed time to fall asleep,
// longer than on Unix because a Wine process wakes through the
// wineserver.
const asleepMethod = "the waiter is not seen asleep (Windows does not tell a lock wait from the runtime's idle waits, and Wine reports every thread in the same state): the hold begins a fixed 10 ms after the waiter says it is about to wait"

func waitAsleep(pid int, limit time.Duration) bool {
	time.Sleep(10 * time.Millisecond)
	return false
}
