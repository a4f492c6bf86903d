package spawn

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

func testExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// TestStartRetriesLoaderDeaths: a start that fails with Wine's loader
// error is tried again with a fresh command, up to three launches.
func TestStartRetriesLoaderDeaths(t *testing.T) {
	exe := testExe(t)
	t.Cleanup(func() { start = (*exec.Cmd).Start })
	for _, failures := range []int{0, 1, 2, 3} {
		launches, calls := 0, 0
		start = func(cmd *exec.Cmd) error {
			if launches++; launches <= failures {
				return &fs.PathError{Op: "fork/exec", Path: cmd.Path, Err: syscall.Errno(1359)}
			}
			return cmd.Start()
		}
		cmd, err := Start(func() (*exec.Cmd, error) {
			calls++
			return exec.Command(exe, "-test.run=^$"), nil
		})
		if failures < attempts {
			if err != nil {
				t.Fatalf("%d loader deaths: %v", failures, err)
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("%d loader deaths: the started child: %v", failures, err)
			}
		} else if !LoaderDied(err) {
			t.Errorf("%d loader deaths: err %v, want the loader's error", failures, err)
		}
		if want := min(failures+1, attempts); calls != want {
			t.Errorf("%d loader deaths: newCmd called %d times, want %d", failures, calls, want)
		}
	}
}

// TestStartReturnsOtherErrors: any other failure, and an error from
// newCmd, is returned at once.
func TestStartReturnsOtherErrors(t *testing.T) {
	exe := testExe(t)
	calls := 0
	_, err := Start(func() (*exec.Cmd, error) {
		calls++
		return exec.Command(exe+".missing", "-test.run=^$"), nil
	})
	if err == nil || LoaderDied(err) || calls != 1 {
		t.Errorf("Start of an unstartable command: err %v after %d calls, want another error after 1", err, calls)
	}
	sentinel := errors.New("no command")
	if _, err := Start(func() (*exec.Cmd, error) { return nil, sentinel }); err != sentinel {
		t.Errorf("Start = %v, want newCmd's error", err)
	}
}
