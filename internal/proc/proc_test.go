package proc

import (
	"os/exec"
	"runtime"
	"testing"

	"github.com/agentlock/agentlock/internal/spawn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAlive(t *testing.T) {
	me := Self()
	assert.True(t, Alive(me))
	if runtime.GOOS == "linux" || runtime.GOOS == "darwin" || runtime.GOOS == "windows" {
		assert.NotZero(t, me.Start, "start stamp should be known on %s", runtime.GOOS)
		reused := me
		reused.Start++
		assert.False(t, Alive(reused), "same pid, other start: a reused pid")
	}
	if b := BootID(); b != ([16]byte{}) {
		other := me
		other.Boot[0] ^= 1
		assert.False(t, Alive(other), "a record from another boot")
	}
	assert.False(t, Alive(ID{}))

	exe := "true"
	args := []string{}
	if runtime.GOOS == "windows" {
		exe, args = "cmd", []string{"/c", "exit 0"}
	}
	cmd, err := spawn.Start(func() (*exec.Cmd, error) { return exec.Command(exe, args...), nil })
	require.NoError(t, err)
	pid := cmd.Process.Pid
	require.NoError(t, cmd.Wait())
	assert.False(t, Alive(ID{PID: pid}), "an exited (and reaped) process")
}
