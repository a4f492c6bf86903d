package proc

import (
	"io"
	"os"
	"os/exec"
	"testing"
	"unsafe"

	"github.com/agentlock/agentlock/internal/spawn"
	"golang.org/x/sys/windows"
)

// TestExitCode259IsDead: a process that exited with code 259
// (STILL_ACTIVE), whose process object is still held open (here by its
// parent), is dead.
func TestExitCode259IsDead(t *testing.T) {
	cmd, err := spawn.Start(func() (*exec.Cmd, error) { return exec.Command("cmd", "/c", "exit 259"), nil })
	if err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	pid := cmd.Process.Pid
	h, err := windows.OpenProcess(windows.SYNCHRONIZE|windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		t.Fatal(err)
	}
	defer windows.CloseHandle(h)
	st, err := creationTime(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := windows.WaitForSingleObject(h, windows.INFINITE); err != nil {
		t.Fatal(err)
	}
	var code uint32
	if err := windows.GetExitCodeProcess(h, &code); err != nil || code != 259 {
		t.Fatalf("exit code %d (%v), want 259", code, err)
	}
	if Alive(ID{PID: pid, Start: st}) {
		t.Error("a process that exited with code 259 is reported alive")
	}
}

// TestListedStart: the process list gives the same creation time as
// the process handle, and does not list a process that is gone.
func TestListedStart(t *testing.T) {
	found, st, err := listedStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !found || st != Self().Start {
		t.Errorf("listedStart(self) = %v, %d; want true, %d", found, st, Self().Start)
	}
	cmd, err := spawn.Start(func() (*exec.Cmd, error) { return exec.Command("cmd", "/c", "exit 0"), nil })
	if err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if found, _, err := listedStart(pid); err != nil || found {
		t.Errorf("listedStart of an exited, reaped child = %v, %v", found, err)
	}
}

// TestAliveWithoutAccess: a process this one may not open (a service's,
// for a desktop program) is still told apart from a reused pid, through
// the process list. It needs a process that denies us access, which an
// unelevated account on Windows always finds (wininit.exe, services.exe)
// and Wine, which does not check access to processes, never does.
func TestAliveWithoutAccess(t *testing.T) {
	pid := deniedPID(t)
	if pid == 0 {
		t.Skip("no process denies this one access (Wine, or an elevated account)")
	}
	found, st, err := listedStart(pid)
	if err != nil || !found {
		t.Fatalf("listedStart(%d) = %v, %v", pid, found, err)
	}
	if !Alive(ID{PID: pid, Start: st}) {
		t.Errorf("pid %d, which we may not open, is reported dead", pid)
	}
	if Alive(ID{PID: pid, Start: st + 1}) {
		t.Errorf("pid %d with another start time (a reused pid) is reported alive", pid)
	}
}

// deniedPID returns a running process that OpenProcess refuses to open
// for SYNCHRONIZE, or 0.
func deniedPID(t *testing.T) int {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer windows.CloseHandle(snap)
	var e windows.ProcessEntry32
	e.Size = uint32(unsafe.Sizeof(e))
	for err = windows.Process32First(snap, &e); err == nil; err = windows.Process32Next(snap, &e) {
		if e.ProcessID == 0 {
			continue
		}
		h, err := windows.OpenProcess(windows.SYNCHRONIZE, false, e.ProcessID)
		if err == nil {
			windows.CloseHandle(h)
			continue
		}
		if err == windows.ERROR_ACCESS_DENIED {
			return int(e.ProcessID)
		}
	}
	return 0
}

// TestWatchSeesExit: a Watch (on Windows, a handle on the process) says
// that a live process has not exited, and that it has once it is
// killed; after Close it says it cannot tell.
func TestWatchSeesExit(t *testing.T) {
	var stdin io.WriteCloser
	cmd, err := spawn.Start(func() (*exec.Cmd, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestWatchChild$")
		cmd.Env = append(os.Environ(), watchChildEnv+"=1")
		var err error
		stdin, err = cmd.StdinPipe()
		return cmd, err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	}()
	w := NewWatch(cmd.Process.Pid)
	if w == nil {
		t.Fatal("NewWatch returned no watch for a child process")
	}
	defer w.Close()
	for i := 0; i < 3; i++ {
		if exited, ok := w.Exited(); exited || !ok {
			t.Fatalf("Exited of a live process = %v, %v; want false, true", exited, ok)
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait() // the process has exited once Wait returns
	if exited, ok := w.Exited(); !exited || !ok {
		t.Fatalf("Exited of a killed process = %v, %v; want true, true", exited, ok)
	}
	w.Close()
	if _, ok := w.Exited(); ok {
		t.Fatal("Exited after Close says it can tell")
	}
}

const watchChildEnv = "PROC_TEST_WATCH_CHILD"

// TestWatchChild is the child of TestWatchSeesExit: it lives until its
// standard input closes.
func TestWatchChild(t *testing.T) {
	if os.Getenv(watchChildEnv) == "" {
		t.Skip("the child of TestWatchSeesExit")
	}
	io.Copy(io.Discard, os.Stdin)
}
