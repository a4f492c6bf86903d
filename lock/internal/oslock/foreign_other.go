//go:build !linux

package oslock

// foreignHolder reports no holder: only Linux offers a table of file
// locks (/proc/locks) to find a holder that published no record. Such
// a holder shows as a busy lock with a zero Holder, and Holder reports
// the lock as not held.
func foreignHolder(lockPath string) (pid int, ok bool) { return 0, false }
