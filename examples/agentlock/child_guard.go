//go:build unix && !linux && !freebsd

package main

import (
	"os"
	"os/exec"
)

// runChild starts cmd, calls started with its process, and waits for
// it to end. This system has no parent-death signal, so the command
// runs under a guard process that kills it if agentlock dies (see
// guardCommand).
func runChild(cmd *exec.Cmd, started func(*os.Process)) (*os.ProcessState, error) {
	return startGuarded(cmd, started)
}
