// Command installer is the background installer of the agentlock
// examples: it validates a logon server first, takes the lock second,
// installs the packages the server lists, and records its progress in
// the instruction file it shares with the poller. Run it with -h.
//
// The code is in examples/internal/installer, so that examples/demo
// can run the same program by re-executing itself.
package main

import (
	"os"

	"github.com/agentlock/agentlock/examples/internal/installer"
)

func main() {
	os.Exit(installer.Main(os.Args[1:], os.Stdout, os.Stderr))
}
