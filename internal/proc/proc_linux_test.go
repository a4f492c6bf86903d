package proc

import (
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestZombieIsDead: a process killed but not yet reaped by its parent
// has released its locks; it must not be reported as a live holder.
func TestZombieIsDead(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	require.NoError(t, cmd.Start())
	defer cmd.Wait()
	pid := cmd.Process.Pid
	st, err := startStamp(pid)
	require.NoError(t, err)
	id := ID{PID: pid, Start: st, Boot: BootID()}
	assert.True(t, Alive(id))
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	// waitid with WNOWAIT returns once the child has exited, and leaves
	// it unreaped: a zombie until cmd.Wait.
	exited := make(chan error, 1)
	go func() {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		for err == unix.EINTR {
			err = unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		}
		exited <- err
	}()
	select {
	case err := <-exited:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the killed child never exited")
	}
	state, _, err := stat(pid)
	require.NoError(t, err, "not reaped yet, so /proc/PID must still exist")
	require.Equal(t, 'Z', rune(state), "the killed child is a zombie")
	assert.False(t, Alive(id), "a zombie is not a live holder")
}
