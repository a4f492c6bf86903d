package lock_test

import (
	"context"
	"io/fs"
	"os"
	"runtime"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/lock"
)

func TestReadOnlyFileSystem(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("needs root on Linux to mount a read-only tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_RDONLY, "mode=0755"); err != nil {
		t.Skipf("cannot mount a read-only tmpfs here: %v", err)
	}
	defer syscall.Unmount(dir, 0)
	c := newC(t, dir, "ro")
	_, err := c.Acquire(context.Background())
	require.ErrorIs(t, err, syscall.EROFS)
	var pe *fs.PathError
	require.ErrorAs(t, err, &pe)
	_, err = c.Holder(context.Background())
	require.ErrorIs(t, err, lock.ErrNotHeld)
}
