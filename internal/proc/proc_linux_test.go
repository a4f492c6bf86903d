package proc

import (
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	deadline := time.Now().Add(10 * time.Second)
	for {
		state, _, err := stat(pid)
		require.NoError(t, err, "not reaped yet, so /proc/PID must still exist")
		if state == 'Z' {
			break
		}
		require.True(t, time.Now().Before(deadline), "the killed child never became a zombie")
		time.Sleep(time.Millisecond)
	}
	assert.False(t, Alive(id), "a zombie is not a live holder")
}
