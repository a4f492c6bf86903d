package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// On Linux the guard is a child subreaper: a process the command leaves
// running, even in a session of its own, is killed when the command
// ends, before the lock is released.
func TestRunKillsWhatTheCommandLeft(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid(1) here")
	}
	dir := lockDir(t)
	log := filepath.Join(dir, "log")
	r := agentlock(t, "", "run", "-dir", dir, "x", "--", "sh", "-c",
		`setsid sh -c 'sleep 1; echo left >> "$0"' "$0" </dev/null >/dev/null 2>&1 &
		sh -c 'sleep 1; echo background >> "$0"' "$0" </dev/null >/dev/null 2>&1 &
		exit 3`, log)
	assert.Equal(t, 3, r.code, r.stderr)
	time.Sleep(2 * time.Second) // past the left process's 1s: it would have written by now
	_, err := os.Stat(log)
	assert.ErrorIs(t, err, os.ErrNotExist, "a process the command left ran on without the lock")
}
