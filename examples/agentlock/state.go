package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"time"

	"github.com/agentlock/agentlock/lock"
)

// The states of a lock that who and ls report.
const (
	stateHeld      = "held"
	stateFree      = "free"
	stateAbandoned = "abandoned" // free, but its last holder died holding it
)

// lockState is one lock as who and ls show it; its JSON form is what
// -json prints.
type lockState struct {
	Name       string     `json:"name"`
	State      string     `json:"state"`
	PID        int        `json:"pid,omitempty"`
	Host       string     `json:"host,omitempty"`
	Purpose    string     `json:"purpose,omitempty"`
	Since      *time.Time `json:"since,omitempty"`
	AgeSeconds float64    `json:"age_seconds,omitempty"`
	Token      uint64     `json:"token,omitempty"`
	Local      bool       `json:"local,omitempty"`   // the holder runs on this machine
	Foreign    bool       `json:"foreign,omitempty"` // locked without this package: only PID is known
	Error      string     `json:"error,omitempty"`   // the lock's state could not be read
}

// inspect reads the state of c's lock without contending for it.
func inspect(ctx context.Context, c *lock.Coordinator, now time.Time) (lockState, error) {
	st := lockState{Name: c.Name(), State: stateFree}
	h, err := c.Holder(ctx)
	if errors.Is(err, lock.ErrNotHeld) {
		if ae := (*lock.AbandonedError)(nil); errors.As(err, &ae) {
			st.State = stateAbandoned
		}
		return st, nil
	}
	if err != nil {
		st.State, st.Error = "unknown", err.Error()
		return st, err
	}
	if h.Foreign {
		st.State, st.PID, st.Foreign = stateHeld, h.PID, true
		return st, nil
	}
	since := h.Since.Local()
	st.State, st.PID, st.Host, st.Purpose, st.Token = stateHeld, h.PID, h.Host, h.Purpose, h.Token
	st.Local = h.Local()
	if !h.Since.IsZero() {
		st.Since, st.AgeSeconds = &since, age(h, now).Seconds()
	}
	return st, nil
}

// text writes st for people, as who prints it.
func (st lockState) text(w io.Writer) {
	switch st.State {
	case stateFree:
		fmt.Fprintf(w, "%s: free\n", st.Name)
		return
	case stateAbandoned:
		fmt.Fprintf(w, "%s: free (its last holder died holding it: what it guards may be half-written)\n", st.Name)
		return
	case stateHeld:
	default:
		fmt.Fprintf(w, "%s: %s (%s)\n", st.Name, st.State, st.Error)
		return
	}
	if st.Foreign {
		fmt.Fprintf(w, "%s: held by pid %d %s\n", st.Name, st.PID, foreignNote)
		return
	}
	fmt.Fprintf(w, "%s: held\n", st.Name)
	fmt.Fprintf(w, "  pid      %d\n", st.PID)
	host := st.Host
	if !st.Local {
		host += " (another machine)"
	}
	fmt.Fprintf(w, "  host     %s\n", host)
	fmt.Fprintf(w, "  purpose  %s\n", st.Purpose)
	if st.Since != nil {
		fmt.Fprintf(w, "  since    %s (%v ago)\n", st.Since.Format("2006-01-02 15:04:05.000 MST"),
			time.Duration(st.AgeSeconds*float64(time.Second)))
	}
	fmt.Fprintf(w, "  token    %d\n", st.Token)
}

// short is st in one line, as ls prints it.
func (st lockState) short() string {
	switch st.State {
	case stateHeld:
		if st.Foreign {
			return fmt.Sprintf("held by pid %d %s", st.PID, foreignNote)
		}
		s := fmt.Sprintf("held by pid %d on %s", st.PID, st.Host)
		if st.Since != nil {
			s += fmt.Sprintf(" for %v", time.Duration(st.AgeSeconds*float64(time.Second)))
		}
		if st.Purpose != "" {
			s += ": " + strconv.Quote(st.Purpose)
		}
		return s
	case stateFree:
		return "free"
	case stateAbandoned:
		return "free, last holder died holding it"
	}
	return st.State + ": " + st.Error
}

func writeJSON(w io.Writer, v any) {
	b, _ := json.Marshal(v) // lockState always marshals
	w.Write(append(b, '\n'))
}

// lockDir returns the lock directory the flags select: -dir, or the
// lock package's default.
func (b *backendFlags) lockDir() (string, error) {
	if b.dir != "" {
		return filepath.Abs(b.dir)
	}
	return defaultDir()
}
