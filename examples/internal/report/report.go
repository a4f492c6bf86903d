// Package report is how the example programs talk: one Event per thing
// that happened, printed either as a timestamped line for people or as
// one JSON object per line for programs (the demo reads its children's
// events that way, and tests read the demo's).
//
// Only the example programs print; the library packages never do.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// An Event is one thing a program reports. Msg is the sentence for a
// person; the other fields are for programs.
type Event struct {
	Time  time.Time `json:"time"`
	Prog  string    `json:"prog"`  // "installer", "poller" or "demo"
	PID   int       `json:"pid"`   // of the reporting process
	Event string    `json:"event"` // what happened; see the constants of the programs
	Msg   string    `json:"msg"`

	Scenario  string   `json:"scenario,omitempty"` // set by the demo: "fixed" or "legacy"
	Package   string   `json:"package,omitempty"`
	Server    string   `json:"server,omitempty"`
	Purpose   string   `json:"purpose,omitempty"`   // a lock holder's purpose
	Holder    int      `json:"holder,omitempty"`    // a lock holder's pid
	BusyMS    int64    `json:"busy_ms,omitempty"`   // how long the lock has been busy
	Locked    bool     `json:"locked,omitempty"`    // whether the lock was held when it happened
	Abandoned bool     `json:"abandoned,omitempty"` // the lease found the previous holder dead
	Token     uint64   `json:"token,omitempty"`
	Pending   []string `json:"pending,omitempty"`
	Running   []string `json:"installing,omitempty"`
	Done      []string `json:"done,omitempty"`
	Error     string   `json:"error,omitempty"`
}

// A Printer writes events to one writer, as text or JSON lines. It is
// safe for concurrent use.
type Printer struct {
	Prog  string
	JSON  bool
	Color bool

	mu sync.Mutex
	w  io.Writer
}

// NewPrinter returns a Printer for prog writing to w.
func NewPrinter(w io.Writer, prog string, asJSON, color bool) *Printer {
	return &Printer{Prog: prog, JSON: asJSON, Color: color, w: w}
}

// Emit fills in the time, program and pid if they are missing, and
// writes e.
func (p *Printer) Emit(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.Prog == "" {
		e.Prog = p.Prog
	}
	if e.PID == 0 {
		e.PID = os.Getpid()
	}
	var line string
	if p.JSON {
		b, err := json.Marshal(e)
		if err != nil {
			panic(err) // only plain types: cannot fail
		}
		line = string(b)
	} else {
		line = Format(e, p.Color, false)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w, line)
}

// ANSI colours.
const (
	reset  = "\x1b[0m"
	bold   = "\x1b[1m"
	dim    = "\x1b[2m"
	red    = "\x1b[31m"
	green  = "\x1b[32m"
	yellow = "\x1b[33m"
	blue   = "\x1b[34m"
	cyan   = "\x1b[36m"
)

// Format returns the line a person reads for e: time, program and pid,
// and the message. With spurious the line is marked as a spurious busy
// notification (the demo decides which are).
func Format(e Event, color, spurious bool) string {
	ts := e.Time.Format("15:04:05.000")
	who := fmt.Sprintf("%s[%d]", e.Prog, e.PID)
	if e.Prog == "demo" {
		who = "demo"
	}
	msg := e.Msg
	if spurious {
		msg += "   <-- SPURIOUS: nothing is being installed"
	}
	if !color {
		return fmt.Sprintf("%s %-17s %s", ts, who, msg)
	}
	c := ""
	switch e.Prog {
	case "installer":
		c = cyan
	case "poller":
		c = yellow
	case "demo":
		c = bold
	}
	mc := ""
	switch {
	case spurious:
		mc = bold + red
	case e.Event == "busy":
		mc = bold + yellow
	case e.Event == "installed" || e.Event == "recovered":
		mc = green
	case e.Event == "validation-failed" || e.Event == "error" || e.Event == "killed":
		mc = red
	case e.Prog == "demo":
		mc = bold + blue
	}
	if mc == "" {
		return fmt.Sprintf("%s%s%s %s%-17s%s %s", dim, ts, reset, c, who, reset, msg)
	}
	return fmt.Sprintf("%s%s%s %s%-17s%s %s%s%s", dim, ts, reset, c, who, reset, mc, msg, reset)
}

// ColorOK reports whether f looks like a terminal that wants colour:
// a character device, $NO_COLOR unset and $TERM not "dumb".
func ColorOK(f *os.File) bool {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// List joins names for a message: "a, b and c", or "none".
func List(names []string) string {
	switch len(names) {
	case 0:
		return "none"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// Seconds formats a duration for a person: "0.4 s", "12 s".
func Seconds(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%d s", int(d.Round(time.Second)/time.Second))
}
