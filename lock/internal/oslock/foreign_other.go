//go:build !linux

package oslock

import "os"

// lockHolder reports no holder: only Linux offers a table of file
// locks (/proc/locks) to find a holder that published no record. Such
// a holder shows as a busy lock with a zero Holder, and Holder reports
// the lock as not held.
func lockHolder(lockPath, markPath string) (pid int, marked, ok bool) { return 0, false, false }

// mark does nothing: without a table of locks nobody could read it.
func mark(*os.File) {}
