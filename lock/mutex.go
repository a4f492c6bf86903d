package lock

import (
	"fmt"

	"github.com/agentlock/agentlock/lock/internal/oslock"
)

// The named-mutex backend.
//
// On Windows the lock NAME is the kernel mutex SCOPE\agentlock.NAME,
// created with CreateMutexEx (or opened, if it exists). Windows mutexes
// are owned by threads, so each held mutex is owned by a goroutine
// locked to its OS thread (runtime.LockOSThread) that takes and
// releases it; a waiter waits on the mutex and a cancel event at once,
// so cancellation is immediate and leaves nothing holding the mutex.
// When the holder's process dies the system abandons the mutex, and the
// next holder's lease reports Abandoned.
//
// Holder records and tokens are published exactly as with the file
// backend, on a shared holder page: the file _mutex.NAME.holder (for
// ScopeLocal, _mutex.sSESSION.NAME.holder, as Local objects are per
// session) in the holder directory, by default the file backend's
// default directory. Lock names cannot start with '_', so these files
// never collide with the file backend's.
//
// On other operating systems there are no named kernel mutexes that
// the system releases when their owner dies; the backend is then the
// file backend on the lock file _mutex.NAME.lock in the same directory
// (for ScopeLocal, _mutex.uUID.NAME.lock: one namespace per user), with
// flock(2) and the same records, tokens, crash and cancellation
// behaviour. It is a separate namespace from the file backend's: a
// named mutex "x" and a file lock "x" do not exclude each other.

// A MutexScope is the namespace of a named mutex.
type MutexScope int

const (
	// ScopeGlobal is the machine-wide namespace (Global\ on Windows):
	// a service in session 0 and programs in every logon session see
	// the same mutex. It is the default, because the case this package
	// was written for is a service and a desktop program sharing a lock.
	ScopeGlobal MutexScope = iota

	// ScopeLocal is the namespace of one logon session (Local\ on
	// Windows; one user on other systems): programs of other sessions
	// do not see the mutex. In Windows session 0 (services, scheduled
	// tasks, SSH sessions), whose Local\ namespace is the global one,
	// ScopeLocal is ScopeGlobal.
	ScopeLocal
)

func (s MutexScope) String() string {
	switch s {
	case ScopeGlobal:
		return "global"
	case ScopeLocal:
		return "local"
	}
	return fmt.Sprintf("MutexScope(%d)", int(s))
}

// A MutexOption configures NewNamedMutexBackend.
type MutexOption struct {
	name  string
	apply func(*mutexConfig) error
}

type mutexConfig struct {
	scope MutexScope
	dir   string
}

// WithScope sets the namespace of the mutexes (default ScopeGlobal).
func WithScope(s MutexScope) MutexOption {
	return MutexOption{name: "WithScope", apply: func(c *mutexConfig) error {
		if s != ScopeGlobal && s != ScopeLocal {
			return fmt.Errorf("unknown scope %d", int(s))
		}
		c.scope = s
		return nil
	}}
}

// WithMutexDir sets the directory of the holder records (and, on
// systems other than Windows, of the lock files). It is checked like
// the file backend's directory (see WithDir). Programs that share a
// mutex must use the same directory, or they see different records.
// The default is the file backend's default directory.
func WithMutexDir(dir string) MutexOption {
	return MutexOption{name: "WithMutexDir", apply: func(c *mutexConfig) error {
		if dir == "" {
			return fmt.Errorf("empty directory")
		}
		c.dir = dir
		return nil
	}}
}

// NewNamedMutexBackend returns the named-mutex backend, for use with
// WithBackend:
//
//	b, err := lock.NewNamedMutexBackend(lock.WithScope(lock.ScopeGlobal))
//	c, err := lock.New("pcm-install", lock.WithBackend(b))
//
// On Windows it locks a kernel mutex (Global\agentlock.NAME, or
// Local\agentlock.NAME with ScopeLocal), which the system abandons when
// its owner dies. On other systems it locks the file _mutex.NAME.lock in
// the mutex directory with flock(2), a namespace apart from the file
// backend's, never a no-op. Records, tokens, Abandoned, cancellation and
// Holder behave as with the file backend. Invalid options are errors
// matching ErrInvalidOption; an unsafe holder directory is an error
// matching ErrUnsafePath.
//
// On Windows a mutex that already exists must be owned by a trusted
// owner (LocalSystem, the Administrators group or the user the process
// runs as), and the process must be allowed to open it. Otherwise
// Acquire fails with a *MutexError matching ErrUnsafePath (a mutex
// pre-created by someone else: name squatting) or fs.ErrPermission
// (access denied); it never runs unlocked. The mutex is created with a
// security descriptor that gives SYSTEM and Administrators full access
// and every authenticated user the right to wait for and release it,
// so a desktop program can share the mutex a service created; an OWNER
// RIGHTS entry gives its creator no more, so a service also shares the
// mutex a desktop program created. A mutex that another user created
// without that entry (as development versions of this package did) is
// refused until every process holding a handle on it has ended.
func NewNamedMutexBackend(opts ...MutexOption) (Backend, error) {
	var c mutexConfig
	for _, o := range opts {
		if o.apply == nil {
			return nil, fmt.Errorf("%w: zero MutexOption", ErrInvalidOption)
		}
		if err := o.apply(&c); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidOption, o.name, err)
		}
	}
	// The holder directory is found and checked as the file backend's.
	fb, err := NewFileBackend(c.dir)
	if err != nil {
		return nil, err
	}
	c.dir = fb.(*fileBackend).dir
	return newMutexBackend(&c)
}

// newMutexBackend returns the backend on named kernel mutexes where the
// system has them (Windows), else on lock files.
func newMutexBackend(c *mutexConfig) (Backend, error) {
	if oslock.NamedMutexes {
		return newKernelMutexBackend(c)
	}
	return newFileMutexBackend(c)
}

// localPrefix marks the per-session (Windows) or per-user (elsewhere)
// holder files of ScopeLocal.
var localPrefix = func() string {
	if oslock.NamedMutexes {
		return "s"
	}
	return "u"
}()

// mutexObjectName returns the Windows object name of the mutex for the
// lock name: Global\agentlock.NAME or Local\agentlock.NAME.
func mutexObjectName(s MutexScope, name string) string {
	if s == ScopeLocal {
		return `Local\agentlock.` + name
	}
	return `Global\agentlock.` + name
}

// mutexFileName returns the base name (without extension) of the files
// of a named mutex: _mutex.NAME, with a per-session (Windows) or
// per-user (elsewhere) part for ScopeLocal.
func mutexFileName(s MutexScope, local uint64, name string) string {
	if s == ScopeLocal {
		return fmt.Sprintf("_mutex.%s%d.%s", localPrefix, local, name)
	}
	return "_mutex." + name
}

// A MutexError reports a named mutex that this process may not use: it
// could not be opened (access denied: matches fs.ErrPermission) or its
// owner is not trusted (matches ErrUnsafePath).
type MutexError struct {
	Object string // the object name, such as Global\agentlock.NAME
	Err    error
}

func (e *MutexError) Error() string { return "lock: mutex " + e.Object + ": " + e.Err.Error() }

func (e *MutexError) Unwrap() error { return e.Err }
