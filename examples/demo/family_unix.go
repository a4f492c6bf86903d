//go:build unix

package main

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// inherit passes f to cmd's process and returns its descriptor there.
func inherit(cmd *exec.Cmd, f *os.File) (string, error) {
	cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	return strconv.Itoa(2 + len(cmd.ExtraFiles)), nil
}

// detach starts cmd's process in a session of its own, so that a
// signal to the demo's process group (Ctrl-C, a hangup, kill -9 of the
// group) does not reach it.
func detach(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
}
