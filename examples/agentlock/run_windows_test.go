package main

import "testing"

// The tests of run_unix_test.go need sh, POSIX signals and flock(1).
// On Windows the command ends with agentlock through a job object
// (TestRunKilledCommandDoesNotRunUnlocked), and console events reach the
// command from the console, not from agentlock.
func TestRunUnixOnly(t *testing.T) {
	t.Skip("Unix only: shell scripts (counter, killed script), signal status and forwarding, the guard process, flock(1)")
}
