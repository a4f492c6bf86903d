//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package guarded

import (
	"io/fs"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/lock"
)

// TestGuardedModeIgnoresUmask checks the documented mode 0644 under a
// restrictive and a permissive umask.
func TestGuardedModeIgnoresUmask(t *testing.T) {
	for _, mask := range []int{0o077, 0o000} {
		c, g := guardedFixture(t, "guarded-mode")
		l := acquire(t, c)
		old := syscall.Umask(mask)
		err := g.Write(l, []byte("x"))
		syscall.Umask(old)
		l.Release()
		require.NoError(t, err)
		st, err := os.Stat(g.Path())
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o644), st.Mode().Perm(), "umask %03o", mask)
	}
}

// TestGuardedReadRefusesFIFO checks that a reader does not block on, or
// parse, something that is not a regular file.
func TestGuardedReadRefusesFIFO(t *testing.T) {
	_, g := guardedFixture(t, "guarded-fifo")
	require.NoError(t, syscall.Mkfifo(g.Path(), 0o644))
	_, err := g.Read()
	assert.ErrorIs(t, err, lock.ErrUnsafePath)
	_, err = Open(g.Path())
	assert.ErrorIs(t, err, lock.ErrUnsafePath)
}
