package lock

import (
	"time"

	"github.com/agentlock/agentlock/internal/proc"
	"github.com/agentlock/agentlock/internal/record"
)

// A Holder is the record a lease publishes: who holds the lock, since
// when, and why. Holder records are advisory: they are what holders
// say, checked for integrity and liveness, but only the operating
// system (or the distributed engine) decides who owns the lock.
type Holder struct {
	PID     int       // process id of the holder
	Host    string    // host name of the holder's machine
	Purpose string    // what the holder says it is doing
	Since   time.Time // when the holder took the lock
	Token   uint64    // the holder's fencing token

	// ProcessStart and BootID identify the holder's process beyond its
	// pid, so that a record left by a process that died (whose pid may
	// since have been given to another process) is never reported as
	// a live holder. Their meaning is platform-specific; zero means
	// unknown.
	ProcessStart uint64
	BootID       [16]byte

	// Foreign reports a holder that locked the lock file without this
	// package (flock(1), Python's fcntl.flock, another library), so
	// that it published no record: only PID is known, from the
	// operating system's lock table (Linux: /proc/locks). Elsewhere a
	// foreign holder is not reported.
	Foreign bool
}

func (h Holder) toRecord(st record.State) record.Record {
	return record.Record{
		State:   st,
		Token:   h.Token,
		PID:     int64(h.PID),
		Start:   h.ProcessStart,
		Since:   h.Since.UnixNano(),
		Boot:    h.BootID,
		Host:    h.Host,
		Purpose: h.Purpose,
	}
}

func holderFromRecord(r *record.Record) Holder {
	return Holder{
		PID:          int(r.PID),
		Host:         r.Host,
		Purpose:      r.Purpose,
		Since:        time.Unix(0, r.Since),
		Token:        r.Token,
		ProcessStart: r.Start,
		BootID:       r.Boot,
	}
}

// Local reports whether the holder runs on this machine (its recorded
// host name is this machine's), so that its Since was read from this
// machine's clock. Holders from a distributed backend may be elsewhere.
func (h Holder) Local() bool { return h.Host == hostname() }

// alive reports whether the process that published h is still running
// (the same process, not a later one with the same pid).
func (h Holder) alive() bool {
	return proc.Alive(proc.ID{PID: h.PID, Start: h.ProcessStart, Boot: h.BootID})
}
