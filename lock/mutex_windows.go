package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"golang.org/x/sys/windows"

	"github.com/agentlock/agentlock/internal/record"
)

// localPrefix marks the per-session holder files of ScopeLocal.
const localPrefix = "s"

// mutexSDDL is the security descriptor of a mutex this package
// creates: SYSTEM and Administrators get full access
// (MUTEX_ALL_ACCESS); authenticated users may wait for it, release it
// and read its security descriptor (SYNCHRONIZE|MUTEX_MODIFY_STATE|
// READ_CONTROL), which is all that using it takes, but may neither
// change its permissions nor take its ownership. The OWNER RIGHTS entry
// gives the creator no more than that, so whichever of a service and a
// desktop program creates the mutex, the other can use it and the
// creator cannot lock the other out by changing its DACL.
const mutexSDDL = "D:(A;;0x1f0001;;;SY)(A;;0x1f0001;;;BA)(A;;0x120001;;;AU)(A;;0x120001;;;OW)"

// mutexAccess is the access this package asks for.
const mutexAccess = windows.SYNCHRONIZE | windows.MUTEX_MODIFY_STATE | windows.READ_CONTROL

func newMutexBackend(c *mutexConfig) (Backend, error) {
	b := &mutexBackend{dir: c.dir, scope: c.scope}
	if c.scope == ScopeLocal {
		var s uint32
		if err := windows.ProcessIdToSessionId(windows.GetCurrentProcessId(), &s); err != nil {
			return nil, os.NewSyscallError("ProcessIdToSessionId", err)
		}
		b.local = uint64(s)
		// Session 0 (services, scheduled tasks, SSH sessions) has no
		// namespace of its own: its Local\ is the global namespace, so
		// its "local" mutex is the global one, and it must publish to
		// the global holder file, or Holder would miss its leases and
		// tokens would follow two sequences.
		if s == 0 {
			b.scope = ScopeGlobal
		}
	}
	return b, nil
}

type mutexBackend struct {
	dir   string
	scope MutexScope
	local uint64 // session id for ScopeLocal
}

// namedMutex is the per-process state of one mutex. It lives for the
// life of the process (see mutexes).
type namedMutex struct {
	object string
	hf     holderFile

	// sem is the in-process semaphore: a send takes it.
	sem chan struct{}

	mu sync.Mutex     // guards h while opening
	h  windows.Handle // 0 until opened; never closed
}

var mutexes sync.Map // object name and holder path → *namedMutex

func (b *mutexBackend) mutex(name string) *namedMutex {
	obj := mutexObjectName(b.scope, name)
	hp := filepath.Join(b.dir, mutexFileName(b.scope, b.local, name)+".holder")
	key := obj + "\x00" + hp
	if v, ok := mutexes.Load(key); ok {
		return v.(*namedMutex)
	}
	v, _ := mutexes.LoadOrStore(key, &namedMutex{
		object: obj,
		hf:     holderFile{path: hp},
		sem:    make(chan struct{}, 1),
	})
	return v.(*namedMutex)
}

// open creates or opens the mutex if that has not been done yet. A
// mutex that already existed must pass checkSecurity (a trusted owner,
// or an OWNER RIGHTS entry that keeps its owner from re-permissioning
// it), else someone could have planted it to keep everyone waiting; and
// an object of another type with the name is refused for the same
// reason.
func (m *namedMutex) open() (windows.Handle, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h != 0 {
		return m.h, nil
	}
	sa, err := securityAttributes(mutexSDDL)
	if err != nil {
		return 0, &MutexError{Object: m.object, Err: err}
	}
	p, err := windows.UTF16PtrFromString(m.object)
	if err != nil {
		return 0, &MutexError{Object: m.object, Err: err}
	}
	// CreateMutexEx opens the mutex if it exists, asking for
	// mutexAccess either way, and then reports ERROR_ALREADY_EXISTS
	// together with a valid handle: that is success.
	h, err := windows.CreateMutexEx(sa, p, 0, mutexAccess)
	existed := err == windows.ERROR_ALREADY_EXISTS && h != 0
	switch {
	case existed:
	case err == windows.ERROR_ACCESS_DENIED:
		return 0, &MutexError{Object: m.object, Err: fmt.Errorf("it exists and this user may not open it (created by another user with other permissions): %w", err)}
	case err == windows.ERROR_INVALID_HANDLE:
		return 0, &MutexError{Object: m.object, Err: fmt.Errorf("%w: the name belongs to an object that is not a mutex", ErrUnsafePath)}
	case err != nil:
		return 0, &MutexError{Object: m.object, Err: err}
	}
	if existed {
		if err := checkSecurity(h, windows.SE_KERNEL_OBJECT, "mutex", false); err != nil {
			windows.CloseHandle(h)
			return 0, &MutexError{Object: m.object, Err: err}
		}
	}
	m.h = h
	return h, nil
}

func (b *mutexBackend) Acquire(ctx context.Context, req Request) (Grant, error) {
	if err := validateName(req.Name); err != nil {
		return nil, err
	}
	m := b.mutex(req.Name)
	// As in the file backend, goroutines of one process take turns on
	// the semaphore before they touch the mutex.
	if err := takeTurn(ctx, m.sem, req.Name, req.Wait, &m.hf); err != nil {
		return nil, err
	}
	g, err := m.acquire(ctx, req)
	if err != nil {
		<-m.sem
		return nil, err
	}
	return g, nil
}

func (m *namedMutex) acquire(ctx context.Context, req Request) (*pageGrant, error) {
	h, err := m.open()
	if err != nil {
		return nil, err
	}
	page, err := m.hf.open()
	if err != nil {
		return nil, err
	}
	o, abandoned, err := lockOnThread(ctx, h, req.Wait)
	if err == errMutexBusy {
		return nil, m.hf.busy(req.Name)
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, err
		}
		return nil, &MutexError{Object: m.object, Err: err}
	}
	hd, abandoned, err := publishAcquired(page, m.hf.path, req, abandoned)
	if err != nil {
		o.unlock()
		return nil, err
	}
	unlock := func() error {
		err := o.unlock()
		<-m.sem
		if err != nil {
			return &MutexError{Object: m.object, Err: err}
		}
		return nil
	}
	return &pageGrant{hf: &m.hf, page: page, holder: hd, abandoned: abandoned, unlock: unlockFunc(unlock)}, nil
}

var errMutexBusy = errors.New("mutex is held")

// unlockFunc adapts a function to pageGrant's unlock.
type unlockFunc func() error

func (f unlockFunc) unlock() error { return f() }

// An owner is the goroutine that owns one held mutex. Windows mutexes
// belong to a thread, and ReleaseMutex from any other thread fails with
// ERROR_NOT_OWNER, so the goroutine that takes the mutex is locked to
// its thread and is also the one that releases it.
type owner struct {
	release chan struct{}
	done    chan error
}

// lockOnThread takes the mutex h on a new goroutine locked to its OS
// thread, and returns the owner that will release it.
func lockOnThread(ctx context.Context, h windows.Handle, wait bool) (*owner, bool, error) {
	type result struct {
		abandoned bool
		err       error
	}
	res := make(chan result, 1)
	o := &owner{release: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		runtime.LockOSThread()
		abandoned, err := waitMutex(ctx, h, wait)
		res <- result{abandoned, err}
		if err != nil {
			// This thread does not own the mutex.
			runtime.UnlockOSThread()
			return
		}
		<-o.release
		err = windows.ReleaseMutex(h)
		if err == nil {
			runtime.UnlockOSThread()
		}
		// Otherwise the thread stays locked and exits with this
		// goroutine; the system then abandons anything it still owns.
		o.done <- err
	}()
	r := <-res
	if r.err != nil {
		return nil, false, r.err
	}
	return o, r.abandoned, nil
}

// unlock has the owner release the mutex and waits until it has.
func (o *owner) unlock() error {
	close(o.release)
	if err := <-o.done; err != nil {
		return os.NewSyscallError("ReleaseMutex", err)
	}
	return nil
}

// waitMutex takes h on the calling thread, which must be locked. It
// reports whether the previous owner abandoned the mutex. Without wait
// it makes one attempt (errMutexBusy if held). With wait it waits for
// the mutex and for a cancel event that context.AfterFunc sets; a wait
// that ends on the cancel event has not taken the mutex (a wait on
// several objects changes only the one that satisfies it), so a
// cancelled wait leaves nothing held.
func waitMutex(ctx context.Context, h windows.Handle, wait bool) (abandoned bool, err error) {
	r, err := windows.WaitForSingleObject(h, 0)
	switch r {
	case windows.WAIT_OBJECT_0:
		return false, nil
	case windows.WAIT_ABANDONED:
		return true, nil
	case uint32(windows.WAIT_TIMEOUT):
		if !wait {
			return false, errMutexBusy
		}
	default:
		return false, os.NewSyscallError("WaitForSingleObject", err)
	}

	cancel, done, err := cancelEvent(ctx)
	if err != nil {
		return false, err
	}
	defer done()
	// The cancel event comes first: if both are signalled, the wait
	// returns the lower index and leaves the mutex alone.
	r, err = windows.WaitForMultipleObjects([]windows.Handle{cancel, h}, false, windows.INFINITE)
	switch r {
	case windows.WAIT_OBJECT_0:
		return false, ctx.Err()
	case windows.WAIT_OBJECT_0 + 1:
		return false, nil
	case windows.WAIT_ABANDONED + 1:
		return true, nil
	}
	return false, os.NewSyscallError("WaitForMultipleObjects", err)
}

func (b *mutexBackend) Holder(ctx context.Context, name string) (Holder, error) {
	if err := validateName(name); err != nil {
		return Holder{}, err
	}
	return b.mutex(name).hf.holder(name)
}

// publishAcquired publishes req.Holder on page right after the lock
// was taken: it sets Since and a token larger than the last one stored
// (see issueToken), and reports the acquisition as abandoned if the
// caller already knows it is (abandoned) or the previous record still
// says held (its holder never released) or cannot be read.
func publishAcquired(page *record.Page, path string, req Request, abandoned bool) (Holder, bool, error) {
	prevState, prevToken, perr := page.Peek()
	return publishAfter(page, path, req, abandoned, prevState, prevToken, perr, nil)
}
