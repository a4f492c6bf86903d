//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// raw is the flock(2) system call on a descriptor kept open: the
// baseline every ratio is taken against.
type raw struct{ fd int }

func newRaw(dir string) *raw {
	fd, err := unix.Open(filepath.Join(dir, lockName+".lock"), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o666)
	check(err)
	return &raw{fd}
}
func (r *raw) lock(ctx context.Context) error { return unix.Flock(r.fd, unix.LOCK_EX) }
func (r *raw) try() (bool, error) {
	err := unix.Flock(r.fd, unix.LOCK_EX|unix.LOCK_NB)
	if err == unix.EWOULDBLOCK {
		return false, nil
	}
	return err == nil, err
}
func (r *raw) unlock() error { return unix.Flock(r.fd, unix.LOCK_UN) }

// cpuHold is how long a waiter waits in the CPU figure.
const cpuHold = 3 * time.Second

// Operations per batch of the uncontended and busy figures, and with
// -quick.
const batchOps, quickBatchOps = 5000, 2000

// suites: one table, raw flock against gofrs/flock and agentlock's
// file backend.
var suites = []suite{{
	columns: []string{"raw flock", "gofrs/flock", "agentlock"},
	lock:    []string{"raw", "gofrs", "agentlock"},
	cpu:     []string{"raw", "gofrs-1ms", "agentlock"},
	cancel:  []string{"naive", "gofrs-10ms", "agentlock"},
}}

func init() {
	labels["cancel/naive"] = "blocking flock in a goroutine: "
}

func newImpl(kind, dir string) impl {
	if im, ok := newFileImpl(kind, dir, func(dir string) impl { return newRaw(dir) }); ok {
		return im
	}
	panic("unknown impl " + kind)
}

// newProbe opens the lock of kind's directory raw, to see whether
// anybody holds it.
func newProbe(kind, dir string) impl { return newRaw(dir) }

// stamp is the wall clock in ns, comparable across processes.
func stamp() int64 { return time.Now().UnixNano() }

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var u unix.Rusage
	check(unix.Getrusage(unix.RUSAGE_SELF, &u))
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// cpuMethod says how the waiter's CPU time was measured, if that needs
// saying: getrusage(2) needs none.
func cpuMethod() string { return "" }

// system describes the system beyond GOOS/GOARCH for the first line of
// the output: here, nothing.
func system() string { return "" }

// loadavg is the machine's load average where the system says it.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return ", load average " + strings.Join(f[:3], " ")
}
