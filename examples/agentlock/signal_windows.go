package main

import (
	"os"
	"syscall"
)

// forwarded are the signals run catches. On Windows the console
// delivers Ctrl-C and close events to every process attached to it, the
// command included, so there is nothing to pass on: agentlock only
// catches them so as not to die before the command.
var forwarded = []os.Signal{os.Interrupt, syscall.SIGTERM}

func forward(p *os.Process, s os.Signal) {}

// termSignal reports the signal that ended the process: on Windows a
// process ends with an exit code, never a signal.
func termSignal(ps *os.ProcessState) (int, bool) { return 0, false }

// terminate ends the command: Windows has no SIGTERM to send it.
func terminate(_ *os.Process, kill func()) { kill() }
