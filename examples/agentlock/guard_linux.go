package main

import (
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// startCommand starts cmd for the guard. The guard becomes a child
// subreaper, so a process the command starts stays the guard's
// descendant even when its parent ends or it starts a session of its
// own, and killRest finds it. The command's own process also gets the
// parent-death signal, in case the guard itself is killed. That signal
// is tied to the forking thread, so the returned function, which undoes
// the lock on it, runs only once the command has ended.
func startCommand(cmd *exec.Cmd) (done func(), err error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, os.NewSyscallError("prctl", err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	if err := cmd.Start(); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	return runtime.UnlockOSThread, nil
}

// killRest kills every descendant of the guard with SIGKILL and reaps
// them. Orphans are reparented to the guard (a subreaper), so it waits
// for children until there are none, killing again after each one: a
// process forked while the guard looked is caught on the next round.
func killRest(cmd *exec.Cmd) {
	for {
		signalRest(cmd)
		if _, err := syscall.Wait4(-1, nil, 0, nil); err == syscall.ECHILD {
			return
		}
	}
}

// signalRest sends SIGKILL to every descendant of the guard it finds.
func signalRest(*exec.Cmd) {
	for _, pid := range descendants(os.Getpid()) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, ok := parentPID(p); ok {
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	queue := children[pid]
	for len(queue) > 0 {
		p := queue[0]
		queue = append(queue[1:], children[p]...)
		out = append(out, p)
	}
	return out
}

// parentPID reads pid's parent from /proc/PID/stat, whose second field
// (the command name in parentheses) may itself hold spaces and ")".
func parentPID(pid int) (int, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 {
		return 0, false
	}
	pp, err := strconv.Atoi(string(f[1]))
	return pp, err == nil
}
