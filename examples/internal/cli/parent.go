package cli

import (
	"io"
	"os"
	"strconv"
	"sync"
)

// ParentPipeEnv names the environment variable through which the demo
// hands a program it starts the read end of a pipe (a file descriptor
// on Unix, a handle on Windows) whose write end only the demo holds.
// The read sees end of file when the demo has ended, however it ended
// (kill -9 included), and the program then exits at once: there is
// nobody left to report to. On Linux the demo also sets the parent-death
// signal; the pipe is what works on every system.
const ParentPipeEnv = "AGENTLOCK_DEMO_PARENT_PIPE"

// watchParent starts the watch on the parent-death pipe, if there is
// one, once.
var watchParent = sync.OnceFunc(func() {
	v := os.Getenv(ParentPipeEnv)
	if v == "" {
		return
	}
	fd, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "parent-death pipe")
	if f == nil {
		return
	}
	go func() {
		io.Copy(io.Discard, f)
		os.Exit(StatusFailure)
	}()
})
