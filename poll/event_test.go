package poll

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/agentlock/agentlock/lock"
)

// Busy is how long the holder has been busy; Waited is how long this
// poller has been finding the lock busy.
func TestEventBusyAndWaited(t *testing.T) {
	now := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
	runStart := now.Add(-3 * time.Second)
	h := lock.Holder{PID: 42, Host: localHost(), Purpose: "installing X", Since: now.Add(-time.Hour)}
	e := newEvent("l", h, runStart, 2, now, now.Add(time.Second))
	assert.Equal(t, time.Hour, e.Busy, "holder busy for")
	assert.Equal(t, 3*time.Second, e.Waited, "you have waited")

	// A holder on another machine: its clock is not ours, so both are
	// measured from the first busy look.
	h.Host = "elsewhere.invalid"
	e = newEvent("l", h, runStart, 2, now, now.Add(time.Second))
	assert.Equal(t, 3*time.Second, e.Busy)
	assert.Equal(t, 3*time.Second, e.Waited)
}
