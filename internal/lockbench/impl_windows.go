package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/agentlock/agentlock/lock"
)

// rawFile is LockFileEx and UnlockFileEx on a handle kept open, on the
// whole range of the file as agentlock's file backend locks it: the
// baseline of the file-lock table. The handle is synchronous, so a
// blocking LockFileEx blocks its thread until the lock is granted.
type rawFile struct{ h windows.Handle }

func newRawFile(dir string) *rawFile {
	p, err := windows.UTF16PtrFromString(filepath.Join(dir, lockName+".lock"))
	check(err)
	h, err := windows.CreateFile(p, windows.GENERIC_READ|windows.GENERIC_WRITE,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE,
		nil, windows.OPEN_ALWAYS, windows.FILE_ATTRIBUTE_NORMAL, 0)
	check(err)
	return &rawFile{h}
}

func (r *rawFile) lockFlags(flags uint32) error {
	return windows.LockFileEx(r.h, windows.LOCKFILE_EXCLUSIVE_LOCK|flags, 0, math.MaxUint32, math.MaxUint32, new(windows.Overlapped))
}
func (r *rawFile) lock(ctx context.Context) error { return r.lockFlags(0) }
func (r *rawFile) try() (bool, error) {
	err := r.lockFlags(windows.LOCKFILE_FAIL_IMMEDIATELY)
	if err == windows.ERROR_LOCK_VIOLATION {
		return false, nil
	}
	return err == nil, err
}
func (r *rawFile) unlock() error {
	return windows.UnlockFileEx(r.h, 0, math.MaxUint32, math.MaxUint32, new(windows.Overlapped))
}

// rawMutex is CreateMutex once, then WaitForSingleObject and
// ReleaseMutex: the baseline of the named-mutex table. A mutex belongs
// to a thread, so the goroutine stays on its thread while it holds the
// mutex. A wait with a deadline is a wait with a timeout, the system's
// own way to give up, so a cancelled wait leaves nothing held.
//
// The object is the one agentlock's named-mutex backend uses for a lock
// named after the directory (Local\agentlock.NAME, documented in
// package lock), so that it can also probe and hold agentlock's mutex.
type rawMutex struct{ h windows.Handle }

func newRawMutex(dir string) *rawMutex {
	p, err := windows.UTF16PtrFromString(`Local\agentlock.` + mutexName(dir))
	check(err)
	h, err := windows.CreateMutex(nil, false, p)
	if err == windows.ERROR_ALREADY_EXISTS && h != 0 {
		err = nil
	}
	check(err)
	return &rawMutex{h}
}

// mutexName is the lock name of the mutexes of a lock directory: its
// base name (lockbench followed by digits), so that concurrent runs do
// not share mutexes.
func mutexName(dir string) string { return filepath.Base(dir) }

func (m *rawMutex) wait(ms uint32) (bool, error) {
	runtime.LockOSThread()
	r, err := windows.WaitForSingleObject(m.h, ms)
	switch r {
	case windows.WAIT_OBJECT_0, windows.WAIT_ABANDONED:
		return true, nil
	case uint32(windows.WAIT_TIMEOUT):
		err = nil
	}
	runtime.UnlockOSThread()
	return false, err
}

func (m *rawMutex) lock(ctx context.Context) error {
	ms := uint32(windows.INFINITE)
	if dl, ok := ctx.Deadline(); ok {
		ms = uint32(max(0, (time.Until(dl)+time.Millisecond-1)/time.Millisecond))
	}
	ok, err := m.wait(ms)
	if err == nil && !ok {
		err = context.DeadlineExceeded
	}
	return err
}
func (m *rawMutex) try() (bool, error) { return m.wait(0) }
func (m *rawMutex) unlock() error {
	err := windows.ReleaseMutex(m.h)
	runtime.UnlockOSThread()
	return err
}

// cpuHold is how long a waiter waits in the CPU figure: GetProcessTimes
// counts in clock ticks, 10 ms under Wine, so a long wait is needed to
// tell 0.1 % of a core from none.
const cpuHold = 10 * time.Second

// Operations per batch of the uncontended and busy figures, and with
// -quick: fewer than on Unix, as under Wine each lock and unlock is a
// round trip to the wineserver (tens of µs).
const batchOps, quickBatchOps = 200, 50

// suites: the file backend against raw LockFileEx and gofrs/flock
// (which uses LockFileEx too), and the named-mutex backend against a
// raw named mutex (nothing to put between them).
var suites = []suite{{
	title:   "File lock",
	columns: []string{"raw LockFileEx", "gofrs/flock", "agentlock file"},
	lock:    []string{"raw", "gofrs", "agentlock"},
	cpu:     []string{"raw", "gofrs-1ms", "agentlock"},
	cancel:  []string{"naive", "gofrs-10ms", "agentlock"},
}, {
	title:   "Named mutex",
	columns: []string{"raw named mutex", "agentlock named mutex"},
	lock:    []string{"mutex", "agentlock-mutex"},
	cpu:     []string{"mutex", "agentlock-mutex"},
	cancel:  []string{"mutex", "agentlock-mutex"},
}}

func init() {
	labels["cancel/naive"] = "blocking LockFileEx in a goroutine: "
	labels["cancel/mutex"] = "wait with a timeout: "
	if v, _ := wine(); v != "" {
		// gofrs/flock opens the file for each try and closes it after a
		// failed one; the wineserver keeps each such descriptor open
		// until the lock is released (closing it would drop the locks it
		// keeps for every process), and runs out of them.
		suites[0].omit = map[string]string{"busy/gofrs": "under Wine each failed TryLock leaves a descriptor open in the wineserver until the lock is released, and the run exhausts them"}
	}
}

func newImpl(kind, dir string) impl {
	if im, ok := newFileImpl(kind, dir, func(dir string) impl { return newRawFile(dir) }); ok {
		return im
	}
	switch kind {
	case "mutex":
		return newRawMutex(dir)
	case "agentlock-mutex":
		b, err := lock.NewNamedMutexBackend(lock.WithScope(lock.ScopeLocal), lock.WithMutexDir(dir))
		check(err)
		return newAgent(mutexName(dir), lock.WithBackend(b))
	}
	panic("unknown impl " + kind)
}

// newProbe opens the lock of kind's directory raw, to see whether
// anybody holds it. For a named mutex, agentlock must have created the
// mutex first: it refuses one created by another program with the
// default security (whose owner it cannot vouch for).
func newProbe(kind, dir string) impl {
	if strings.Contains(kind, "mutex") {
		return newRawMutex(dir)
	}
	return newRawFile(dir)
}

var (
	kernel32 = windows.NewLazySystemDLL("kernel32.dll")
	qpc      = kernel32.NewProc("QueryPerformanceCounter")
	qpcFreq  = sync.OnceValue(func() int64 {
		var f int64
		kernel32.NewProc("QueryPerformanceFrequency").Call(uintptr(unsafe.Pointer(&f)))
		if f <= 0 {
			check(errors.New("QueryPerformanceFrequency failed"))
		}
		return f
	})
)

// stamp is QueryPerformanceCounter in ns, the same clock in every
// process. Not time.Now: under Wine it advances in steps of 40-100 µs
// (Go reads it from the shared user data page, which Wine updates only
// now and then), too coarse for a hand-off.
func stamp() int64 {
	var c int64
	qpc.Call(uintptr(unsafe.Pointer(&c)))
	f := qpcFreq()
	return c/f*1e9 + c%f*1e9/f
}

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var c, e, k, u windows.Filetime
	check(windows.GetProcessTimes(windows.CurrentProcess(), &c, &e, &k, &u))
	ticks := func(t windows.Filetime) int64 { return int64(t.HighDateTime)<<32 | int64(t.LowDateTime) }
	return time.Duration(ticks(k)+ticks(u)) * 100
}

// cpuMethod says how the waiter's CPU time was measured.
func cpuMethod() string {
	if v, _ := wine(); v != "" {
		return "GetProcessTimes, which counts in 10 ms steps under Wine"
	}
	return "GetProcessTimes, which counts in clock ticks (15.6 ms by default)"
}

// wine is the version of Wine and of its host system, if this process
// runs under Wine (ntdll then has wine_get_version).
var wine = sync.OnceValues(func() (version, host string) {
	ntdll := windows.NewLazySystemDLL("ntdll.dll")
	v, h := ntdll.NewProc("wine_get_version"), ntdll.NewProc("wine_get_host_version")
	if v.Find() != nil || h.Find() != nil {
		return "", ""
	}
	r, _, _ := v.Call()
	var sys, rel *byte
	h.Call(uintptr(unsafe.Pointer(&sys)), uintptr(unsafe.Pointer(&rel)))
	return windows.BytePtrToString(*(**byte)(unsafe.Pointer(&r))),
		windows.BytePtrToString(sys) + " " + windows.BytePtrToString(rel)
})

// system names Wine and its host for the first line of the output.
func system() string {
	if v, h := wine(); v != "" {
		return fmt.Sprintf(" under Wine %s on %s", v, h)
	}
	return ""
}

// loadavg is the host's load average under Wine on Linux, where the
// host's /proc is Z:\proc.
func loadavg() string {
	if _, h := wine(); !strings.HasPrefix(h, "Linux ") {
		return ""
	}
	b, err := os.ReadFile(`Z:\proc\loadavg`)
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return ", host load average " + strings.Join(f[:3], " ")
}
