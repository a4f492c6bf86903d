// Command poller is the foreground poller of the agentlock examples:
// it shows what the installer has pending and done, and says when a
// package is being installed in the background, as often as its
// notification policy allows. Run it with -h.
//
// The code is in examples/internal/pollerapp, so that examples/demo
// can run the same program by re-executing itself.
package main

import (
	"os"

	"github.com/agentlock/agentlock/examples/internal/pollerapp"
)

func main() {
	os.Exit(pollerapp.Main(os.Args[1:], os.Stdout, os.Stderr))
}
