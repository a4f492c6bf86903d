//go:build !unix && !windows

package lock

import "errors"

const localPrefix = "u"

// newMutexBackend fails: this platform has neither named mutexes nor
// file locks.
func newMutexBackend(c *mutexConfig) (Backend, error) {
	return nil, errors.ErrUnsupported
}
