// Package proc identifies processes well enough to tell a live holder
// from a dead one whose process id was reused.
//
// An identity is (pid, start stamp, boot id). The start stamp is
// whatever the platform offers that changes when a pid is reused (clock
// ticks since boot on Linux, the start time in microseconds on macOS,
// the creation FILETIME on Windows); the boot id changes on every boot
// where the platform exposes one. Zero means "not known on this
// platform", and comparisons skip unknown parts.
package proc

import (
	"os"
	"sync"
)

// ID identifies one run of one process.
type ID struct {
	PID   int
	Start uint64
	Boot  [16]byte
}

var self struct {
	once sync.Once
	id   ID
}

// Self returns the identity of the calling process.
func Self() ID {
	self.once.Do(func() {
		pid := os.Getpid()
		st, _ := startStamp(pid)
		self.id = ID{PID: pid, Start: st, Boot: BootID()}
	})
	return self.id
}

var boot struct {
	once sync.Once
	id   [16]byte
}

// BootID returns an identifier of the current boot, or zero if the
// platform has none.
func BootID() [16]byte {
	boot.once.Do(func() { boot.id = bootID() })
	return boot.id
}

// Alive reports whether the process identified by id is running now.
// A process from another boot, a pid that no longer exists, and a pid
// whose start stamp differs (reused) are all reported as not alive.
// When the platform cannot tell (for example, permission to inspect
// the process is denied), Alive errs on the side of "alive": a record
// of a live process must never be dismissed as stale.
func Alive(id ID) bool {
	if id.PID <= 0 {
		return false
	}
	if me := Self(); id.PID == me.PID {
		return id.Start == me.Start && (id.Boot == me.Boot || id.Boot == [16]byte{} || me.Boot == [16]byte{})
	}
	if cur := BootID(); cur != ([16]byte{}) && id.Boot != ([16]byte{}) && cur != id.Boot {
		return false
	}
	exists, st := inspect(id.PID)
	if !exists {
		return false
	}
	if st != 0 && id.Start != 0 && st != id.Start {
		return false
	}
	return true
}

// A Watch tells whether one process has exited with one call that does
// not block, instead of looking the process up each time: on Linux a
// pidfd (5.3 and later), which polls readable once the process is gone;
// on Windows a handle on the process, signalled once it exits.
// Elsewhere there is none.
type Watch struct{ f *os.File }

// NewWatch opens a watch on pid, or returns nil where there is none.
// The caller checks afterwards, by other means, that the process is the
// one it means (the pid may have been reused before the open).
func NewWatch(pid int) *Watch { return newWatch(pid) }

// Exited reports whether the process has exited; ok is false if the
// watch cannot tell (closed meanwhile).
func (w *Watch) Exited() (exited, ok bool) { return w.exited() }

// Close closes the watch.
func (w *Watch) Close() {
	if w != nil && w.f != nil {
		w.f.Close()
	}
}
