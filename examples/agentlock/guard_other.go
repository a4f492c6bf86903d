//go:build unix && !linux

package main

import (
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// startCommand starts cmd for the guard in a process group of its own,
// which killRest kills; processes that leave the group (a new session,
// say) are out of reach. A command reading a terminal stays in the
// terminal's foreground group instead (in a group of its own it could
// not read), and killRest can only kill its own process.
func startCommand(cmd *exec.Cmd) (done func(), err error) {
	if _, err := unix.IoctlGetTermios(0, ioctlGetTermios); err != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	return func() {}, cmd.Start()
}

// killRest kills the command's process group, if it has its own.
func killRest(cmd *exec.Cmd) { signalRest(cmd) }

// signalRest sends SIGKILL to the command's process group, if it has
// its own.
func signalRest(cmd *exec.Cmd) {
	if cmd.SysProcAttr != nil && cmd.SysProcAttr.Setpgid {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
