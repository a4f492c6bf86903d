//go:build !darwin && !dragonfly && !freebsd && !linux && !netbsd && !openbsd && !windows

package lock

const localPrefix = "u"

// newMutexBackend fails: this platform has neither named mutexes nor
// file locks (see file_other.go).
func newMutexBackend(c *mutexConfig) (Backend, error) {
	return nil, errNoFileLocks
}
