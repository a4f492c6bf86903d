package oslock

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/windows"
)

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

const namedMutexes = true

type mutex struct{ h windows.Handle }

// An owner is the goroutine that owns one held mutex. Windows mutexes
// belong to a thread, and ReleaseMutex from any other thread fails with
// ERROR_NOT_OWNER, so the goroutine that takes the mutex is locked to
// its thread and is also the one that releases it.
type owner struct {
	release chan struct{}
	done    chan error
}

// openMutex creates or opens the mutex object. A mutex that already
// existed must pass checkSecurity (a trusted owner, or an OWNER RIGHTS
// entry that keeps its owner from re-permissioning it), else someone
// could have planted it to keep everyone waiting; and an object of
// another type with the name is refused for the same reason.
func openMutex(object string) (*Mutex, error) {
	sa, err := securityAttributes(mutexSDDL)
	if err != nil {
		return nil, err
	}
	p, err := windows.UTF16PtrFromString(object)
	if err != nil {
		return nil, err
	}
	// CreateMutexEx opens the mutex if it exists, asking for
	// mutexAccess either way, and then reports ERROR_ALREADY_EXISTS
	// together with a valid handle: that is success.
	h, err := windows.CreateMutexEx(sa, p, 0, mutexAccess)
	existed := err == windows.ERROR_ALREADY_EXISTS && h != 0
	switch {
	case existed:
	case err == windows.ERROR_ACCESS_DENIED:
		return nil, fmt.Errorf("it exists and this user may not open it (created by another user with other permissions): %w", err)
	case err == windows.ERROR_INVALID_HANDLE:
		return nil, fmt.Errorf("%w: the name belongs to an object that is not a mutex", ErrUnsafePath)
	case err != nil:
		return nil, err
	}
	if existed {
		if err := checkSecurity(h, windows.SE_KERNEL_OBJECT, "mutex", false); err != nil {
			windows.CloseHandle(h)
			return nil, err
		}
	}
	return &Mutex{mutex{h}}, nil
}

func sessionID() (uint64, error) {
	var s uint32
	if err := windows.ProcessIdToSessionId(windows.GetCurrentProcessId(), &s); err != nil {
		return 0, os.NewSyscallError("ProcessIdToSessionId", err)
	}
	return uint64(s), nil
}

// lockOnThread takes the mutex h on a new goroutine locked to its OS
// thread, and returns the owner that will release it. An attempt
// without wait first asks whether the mutex is held (see held): a busy
// mutex is then reported without a goroutine, whose start and hand-back
// wake other threads of the runtime, each wake-up a system call (see
// BENCHMARKS.md for what that cost under Wine).
func (m *mutex) lockOnThread(ctx context.Context, wait bool) (*MutexOwner, bool, error) {
	h := m.h
	if !wait {
		if held, ok := m.held(); ok && held {
			return nil, false, ErrMutexBusy
		}
	}
	type result struct {
		abandoned bool
		err       error
	}
	res := make(chan result, 1)
	o := &MutexOwner{owner{release: make(chan struct{}), done: make(chan error, 1)}}
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

// ntQueryMutant reads a mutex's state without waiting for it; the
// handle needs MUTANT_QUERY_STATE access, the bit of MUTEX_MODIFY_STATE
// (see mutexAccess).
var ntQueryMutant = windows.NewLazySystemDLL("ntdll.dll").NewProc("NtQueryMutant")

// mutantBasicInformation is MUTANT_BASIC_INFORMATION.
type mutantBasicInformation struct {
	CurrentCount  int32 // 1 when free, 0 or less when owned
	OwnedByCaller bool
	Abandoned     bool
}

// held reports whether a thread owns the mutex now; ok is false if the
// system cannot tell. An abandoned mutex is not held (its next waiter
// gets it, and hears that it was abandoned). The answer may be stale by
// the time it is used: a mutex found free is still taken by a wait,
// and one found held may have been released meanwhile, as it may be
// after a wait that failed.
func (m *mutex) held() (held, ok bool) {
	if ntQueryMutant.Find() != nil {
		return false, false
	}
	var info mutantBasicInformation
	const mutantBasicInformationClass = 0
	r, _, _ := ntQueryMutant.Call(uintptr(m.h), mutantBasicInformationClass,
		uintptr(unsafe.Pointer(&info)), unsafe.Sizeof(info), 0)
	if r != 0 {
		return false, false
	}
	return info.CurrentCount <= 0, true
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
// it makes one attempt (ErrMutexBusy if held). With wait it waits for
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
			return false, ErrMutexBusy
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
