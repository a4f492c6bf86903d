// Package spawn starts child processes for tests and benchmarks, and
// starts one again when Wine killed it before it ran.
//
// Under Wine about one launch in 200 dies in Wine's loader before the
// program's own code runs; CreateProcess then fails with
// ERROR_INTERNAL_ERROR ("Internal error."). Real Windows does not
// return that error for a valid executable, and no other system does.
package spawn

import (
	"errors"
	"os/exec"
	"syscall"
)

// attempts is how many times Start tries a launch that Wine's loader
// killed.
const attempts = 3

// start starts a command; tests replace it to fail as Wine does.
var start = (*exec.Cmd).Start

// Start calls newCmd for a command and starts it. If the start fails
// because the new process died in Wine's loader, Start calls newCmd
// again for a fresh command (an exec.Cmd cannot be started twice) and
// tries once more, up to attempts launches in all. It returns the
// command that started, or the last error; an error from newCmd is
// returned as it is.
func Start(newCmd func() (*exec.Cmd, error)) (*exec.Cmd, error) {
	var err error
	for range attempts {
		var cmd *exec.Cmd
		if cmd, err = newCmd(); err != nil {
			return nil, err
		}
		if err = start(cmd); err == nil {
			return cmd, nil
		}
		if !LoaderDied(err) {
			return nil, err
		}
	}
	return nil, err
}

// LoaderDied reports whether err, from starting a process, is
// CreateProcess's ERROR_INTERNAL_ERROR (1359): under Wine, the new
// process died before it finished starting. No Unix errno has that
// number, so it is false elsewhere.
func LoaderDied(err error) bool {
	return errors.Is(err, syscall.Errno(1359))
}
