//go:build unix

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// guardCommand is the hidden command that runs a command for run:
// agentlock starts itself as "agentlock _guard COMMAND ARGS..." with
// the read end of a pipe as descriptor 3, and only agentlock holds the
// write end. The guard starts the command, passes on the signals run
// forwards to it, and exits with its status (128+N if signal N killed
// it). If the pipe reaches end of file while the command runs,
// agentlock has died, however it died: the guard kills the command and
// every process it started with SIGKILL and exits. When the command
// ends, the guard kills what it left running as well: the lock is
// released right after, and nothing of the command may go on without
// it. Which processes the guard can find depends on the system (see
// startCommand and killRest).
const guardCommand = "_guard"

func init() { commands[guardCommand] = cmdGuard }

func cmdGuard(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, "agentlock _guard: missing COMMAND")
		return exitUsage
	}
	parent := os.NewFile(3, "parent")
	if parent == nil {
		fmt.Fprintln(e.stderr, "agentlock _guard: no parent pipe")
		return exitFailed
	}
	syscall.CloseOnExec(3) // the command need not see it
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = e.stdin, e.stdout, e.stderr
	done, err := startCommand(cmd)
	if err != nil {
		fmt.Fprintf(e.stderr, "agentlock run: %v\n", err)
		return startStatus(err)
	}
	defer done()
	orphaned := make(chan struct{})
	go func() {
		io.Copy(io.Discard, parent) // returns at end of file: agentlock is gone
		close(orphaned)
	}()
	exited := make(chan struct{})
	var killed atomic.Bool
	go func() {
		for {
			select {
			case s := <-sigs:
				forward(cmd.Process, s)
			case <-orphaned:
				// Kill without reaping: cmd.Wait reaps the command, and
				// killRest below the rest.
				killed.Store(true)
				cmd.Process.Kill()
				signalRest(cmd)
				return
			case <-exited:
				return
			}
		}
	}()
	err = cmd.Wait()
	close(exited)
	killRest(cmd)
	if killed.Load() {
		return 128 + int(syscall.SIGKILL) // nobody waits for it: agentlock is gone
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) && cmd.ProcessState == nil {
		fmt.Fprintf(e.stderr, "agentlock run: %v\n", err)
		return exitFailed
	}
	return exitStatus(cmd.ProcessState)
}
