//go:build unix

package main

import (
	"io"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDemoGroupKilled kills the demo's whole process group with kill -9
// (as a terminal's job control or `timeout -s KILL` may): the reaper,
// in a session of its own, still removes the temporary directory.
func TestDemoGroupKilled(t *testing.T) {
	needProc(t)
	dir := build(t)
	tmp := t.TempDir()
	cmd, _, r := startDemoWith(t, dir, tmp, io.Discard, &syscall.SysProcAttr{Setpgid: true})
	require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL))
	go io.Copy(io.Discard, r)
	cmd.Wait()
	assertNothingLeft(t, dir, tmp)
}
