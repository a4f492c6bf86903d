package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/agentlock/agentlock/examples/internal/cli"
)

// roleReaper is the role of the demo's helper process that removes the
// temporary directory once the demo and its children are gone.
const roleReaper = "reaper"

// reaperPipeEnv names the reaper's end of the pipe it watches.
const reaperPipeEnv = "AGENTLOCK_DEMO_REAPER_PIPE"

// A family is the processes one scenario starts and the temporary
// directory they share, arranged so that neither outlives the demo,
// however it ends: kill -9 included, where the demo itself can clean up
// nothing.
//
//   - Each child ends when the demo does: on Linux by the parent-death
//     signal (SIGKILL), everywhere by end of file on a pipe whose write
//     end only the demo holds (see cli.ParentPipeEnv).
//   - The temporary directory is made by a small reaper process (this
//     binary in the role "reaper"). It reads a second pipe whose write
//     end the demo and every child hold, so its read sees end of file
//     only when all of them have exited; it then removes the directory
//     and exits. It runs in a session (Windows: a process group) of its
//     own, so that what a terminal sends to the demo's process group
//     (Ctrl-C, a hangup) or a kill of the whole group does not end it
//     before it has done its work; it ignores those signals too.
//
// On a normal end the demo stops its children, removes the directory
// itself, closes its pipe ends and waits for the reaper.
type family struct {
	dir    string
	reaper *exec.Cmd

	alive   *os.File // write end of the reaper's pipe: the demo and every child hold it
	parentR *os.File // parent-death pipe: every child holds the read end...
	parentW *os.File // ...and only the demo the write end
}

// newFamily starts the reaper and returns the family with the
// temporary directory the reaper made.
func newFamily(stderr io.Writer) (f *family, err error) {
	f = &family{}
	var aliveR *os.File
	if aliveR, f.alive, err = os.Pipe(); err != nil {
		return nil, err
	}
	defer aliveR.Close() // the reaper's copy is the one that matters
	if f.parentR, f.parentW, err = os.Pipe(); err != nil {
		f.alive.Close()
		return nil, err
	}
	defer func() {
		if err != nil {
			f.closePipes()
		}
	}()
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	f.reaper = exec.Command(exe)
	detach(f.reaper)
	name, err := inherit(f.reaper, aliveR)
	if err != nil {
		return nil, err
	}
	f.reaper.Env = append(os.Environ(), envRole+"="+roleReaper, reaperPipeEnv+"="+name)
	f.reaper.Stderr = stderr
	out, err := f.reaper.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := f.reaper.Start(); err != nil {
		return nil, fmt.Errorf("starting the reaper: %w", err)
	}
	line, rerr := bufio.NewReader(out).ReadString('\n')
	f.dir = strings.TrimSpace(line)
	if rerr != nil || f.dir == "" {
		// It has failed and said why on stderr; its pipe end is gone
		// with it once we close ours.
		f.closePipes()
		f.reaper.Wait()
		return nil, errors.New("the reaper made no temporary directory")
	}
	return f, nil
}

// command returns the command for a child of the family.
func (f *family) command(bin string, args, env []string) (*exec.Cmd, error) {
	cmd := exec.Command(bin, args...)
	if _, err := inherit(cmd, f.alive); err != nil {
		return nil, err
	}
	name, err := inherit(cmd, f.parentR)
	if err != nil {
		return nil, err
	}
	cmd.Env = append(env, cli.ParentPipeEnv+"="+name)
	dieWithParent(cmd)
	return cmd, nil
}

// close removes the directory and waits for the reaper. Every child
// must have been reaped.
func (f *family) close() error {
	err := removeAll(f.dir)
	f.closePipes()
	if werr := f.reaper.Wait(); werr != nil && err == nil {
		err = fmt.Errorf("the reaper: %w", werr)
	}
	return err
}

func (f *family) closePipes() {
	f.alive.Close()
	f.parentR.Close()
	f.parentW.Close()
}

// reaper is the reaper process: it makes the temporary directory,
// prints its path, and removes it once every holder of the pipe's write
// end (the demo and its children) has exited.
func reaper() int {
	// The reaper must outlive the demo in case the demo cannot clean up
	// (see family). A write to a demo that is gone must fail, not kill
	// the reaper.
	signal.Ignore(os.Interrupt, syscall.SIGHUP, syscall.SIGPIPE)
	fd, err := strconv.ParseUint(os.Getenv(reaperPipeEnv), 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo reaper: $%s: %v\n", reaperPipeEnv, err)
		return cli.StatusUsage
	}
	pipe := os.NewFile(uintptr(fd), "reaper pipe")
	dir, err := os.MkdirTemp("", "agentlock-demo-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo reaper: %v\n", err)
		return cli.StatusFailure
	}
	fmt.Println(dir)
	os.Stdout.Close()
	io.Copy(io.Discard, pipe)
	if err := removeAll(dir); err != nil {
		fmt.Fprintf(os.Stderr, "demo reaper: %v\n", err)
		return cli.StatusFailure
	}
	return cli.StatusOK
}

// removeAll is os.RemoveAll, and where that fails, removal entry by
// entry, deepest first: Wine 8 rejects the call Go 1.26 uses to remove
// the entries of a directory, but removes a file or an empty directory.
func removeAll(dir string) error {
	err := os.RemoveAll(dir)
	if err == nil {
		return nil
	}
	var paths []string
	filepath.WalkDir(dir, func(p string, _ fs.DirEntry, werr error) error {
		if werr == nil {
			paths = append(paths, p)
		}
		return nil
	})
	for i := len(paths) - 1; i >= 0; i-- {
		os.Remove(paths[i])
	}
	if _, serr := os.Lstat(dir); errors.Is(serr, fs.ErrNotExist) {
		return nil
	}
	return err
}
