package lock

import (
	"fmt"
	"strings"
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

	// Foreign reports a holder that took the lock without this package,
	// so that it published no record. With the file backend it locked
	// the lock file directly (flock(1), Python's fcntl.flock, another
	// library) and only PID is known, from the operating system's lock
	// table (Linux: /proc/locks; elsewhere a foreign holder is not
	// reported). With a distributed backend it is another tool's lock
	// (etcdctl lock) and only Token and Purpose may be known.
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

// String describes the holder for people: "pid 4242 on build-7
// (installing Office 97) since 2026-12-02 04:31:07.123 +0000 UTC, token
// 1764649867123456789". The purpose is left out when empty; the process
// start time and boot id, which only identify the process to this
// package, are never shown. The zero Holder is "no holder record".
func (h Holder) String() string {
	if h.PID == 0 && h.Host == "" && h.Token == 0 {
		return "no holder record"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pid %d", h.PID)
	if h.Host != "" {
		b.WriteString(" on " + h.Host)
	}
	if h.Purpose != "" {
		fmt.Fprintf(&b, " (%s)", h.Purpose)
	}
	if !h.Since.IsZero() {
		b.WriteString(" since " + h.Since.Format("2006-01-02 15:04:05.000 -0700 MST"))
	}
	fmt.Fprintf(&b, ", token %d", h.Token)
	if h.Foreign {
		b.WriteString(" (foreign)")
	}
	return b.String()
}
