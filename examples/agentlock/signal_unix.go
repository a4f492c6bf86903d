//go:build unix

package main

import (
	"os"
	"syscall"
)

// forwarded are the signals run passes on to the command.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

func forward(p *os.Process, s os.Signal) {
	p.Signal(s) // fails only if the command has ended: nothing to do
}

// termSignal reports the signal that ended the process, if any.
func termSignal(ps *os.ProcessState) (int, bool) {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return 0, false
	}
	return int(ws.Signal()), true
}

// terminate asks the command p to end (SIGTERM).
func terminate(p *os.Process, _ func()) { p.Signal(syscall.SIGTERM) }
