//go:build linux || freebsd

package main

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"syscall"
)

// runChild starts cmd, calls started with its process, and waits for
// it to end.
//
// The command must not outlive agentlock, which holds the lock: the
// kernel sends it SIGKILL when agentlock dies (the parent-death signal,
// which Go's fork also sends at once if agentlock died before the
// child could ask for it). The signal is tied to the thread that forked
// the child, not the process, so this goroutine stays on its thread
// until the command has ended: the runtime never retires a thread whose
// goroutine is still locked to it.
func runChild(cmd *exec.Cmd, started func(*os.Process)) (*os.ProcessState, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	started(cmd.Process)
	err := cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) && cmd.ProcessState == nil {
		return nil, err
	}
	return cmd.ProcessState, nil
}
