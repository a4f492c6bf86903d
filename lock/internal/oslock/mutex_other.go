//go:build !windows

package oslock

import (
	"context"
	"errors"
	"fmt"
	"runtime"
)

// There are no named kernel mutexes here: the named-mutex backend locks
// a file instead.
const namedMutexes = false

type (
	mutex struct{}
	owner struct{}
)

var errNoMutexes = fmt.Errorf("no named mutexes on %s: %w", runtime.GOOS, errors.ErrUnsupported)

func openMutex(string) (*Mutex, error) { return nil, errNoMutexes }

func sessionID() (uint64, error) { return 0, errNoMutexes }

func (*mutex) lockOnThread(context.Context, bool) (*MutexOwner, bool, error) {
	return nil, false, errNoMutexes
}

func (*owner) unlock() error { return errNoMutexes }
