//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
)

// runChild starts cmd, calls started with its process and a function
// that kills it with everything it started, and waits for it to end. The command runs under a guard process that kills it and
// the processes it started if agentlock dies (see guardCommand): a
// parent-death signal would reach the command's own process only.
func runChild(cmd *exec.Cmd, started func(p *os.Process, kill func())) (*os.ProcessState, error) {
	return startGuarded(cmd, started)
}

// startGuarded starts cmd under the guard and returns the guard's
// process state when it ends. See guardCommand.
func startGuarded(cmd *exec.Cmd, started func(p *os.Process, kill func())) (*os.ProcessState, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot start the guard process: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("cannot start the guard process: %w", err)
	}
	// Closing w ends the command and all it started: the guard takes it
	// for agentlock's death. So it happens once the guard has ended, or
	// to kill.
	closeW := sync.OnceFunc(func() { w.Close() })
	defer closeW()
	guard := exec.Command(exe, append([]string{guardCommand}, cmd.Args...)...)
	guard.Env, guard.Stdin, guard.Stdout, guard.Stderr = cmd.Env, cmd.Stdin, cmd.Stdout, cmd.Stderr
	guard.ExtraFiles = []*os.File{r}
	err = guard.Start()
	r.Close()
	if err != nil {
		return nil, fmt.Errorf("cannot start the guard process: %w", err)
	}
	started(guard.Process, closeW)
	err = guard.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) && guard.ProcessState == nil {
		return nil, err
	}
	return guard.ProcessState, nil
}
