//go:build !linux && !darwin && !dragonfly && !freebsd && !netbsd && !openbsd

package lock

// Without a watch (see notify_linux.go), an acquisition checks the
// identity of the lock's files with system calls after a wait (and at
// a process's first), and a held lease's Lost is nil: the removal of
// its files is not seen while it holds, nor by an acquisition that did
// not wait.

// watchState is empty: there is nothing to register.
type watchState struct{}

func watchFiles(l *fileLock) error { return errNoWatch }

// unwatchFiles forgets the (empty) watch, as it does where there is one.
func unwatchFiles(l *fileLock) { l.w = watchState{} }

// pathsUnchanged reports true once the files have been checked: with
// nothing to say when they change, verify checks them only after a wait
// (Windows' own identity check is a handful of system calls, too many
// for every uncontended acquisition).
func pathsUnchanged(l *fileLock) bool { return l.verified != ^uint64(0) }

// checkLost has nothing to check: without a watch the count of changes
// never moves.
func (g *pageGrant) checkLost(l *fileLock) {}
