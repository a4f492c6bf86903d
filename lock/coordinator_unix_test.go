//go:build unix

package lock_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/locktest/proctest"
)

func TestUnsafePaths(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix file kinds")
	}
	ctx := context.Background()
	setups := map[string]func(dir string) error{
		"symlink": func(dir string) error {
			os.WriteFile(filepath.Join(dir, "target"), nil, 0o644)
			return os.Symlink(filepath.Join(dir, "target"), filepath.Join(dir, "x.lock"))
		},
		"dangling symlink": func(dir string) error {
			return os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(dir, "x.lock"))
		},
		"hard link": func(dir string) error {
			os.WriteFile(filepath.Join(dir, "other"), nil, 0o644)
			return os.Link(filepath.Join(dir, "other"), filepath.Join(dir, "x.lock"))
		},
		"directory": func(dir string) error { return os.Mkdir(filepath.Join(dir, "x.lock"), 0o755) },
		"fifo":      func(dir string) error { return syscall.Mkfifo(filepath.Join(dir, "x.lock"), 0o644) },
		"holder symlink": func(dir string) error {
			return os.Symlink("/etc/passwd", filepath.Join(dir, "x.holder"))
		},
	}
	for name, setup := range setups {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, setup(dir))
			c := newC(t, dir, "x")
			l, err := c.Acquire(ctx)
			assert.Nil(t, l)
			require.ErrorIs(t, err, lock.ErrUnsafePath)
			var pe *fs.PathError
			assert.ErrorAs(t, err, &pe)
			_, err = c.TryAcquire(ctx)
			require.ErrorIs(t, err, lock.ErrUnsafePath)
		})
	}

	t.Run("directory is a symlink", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.Symlink(dir, filepath.Join(dir, "link")))
		_, err := lock.New("x", lock.WithDir(filepath.Join(dir, "link")))
		require.ErrorIs(t, err, lock.ErrUnsafePath)
	})
	t.Run("directory writable by all without sticky bit", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "open")
		require.NoError(t, os.Mkdir(dir, 0o755))
		require.NoError(t, os.Chmod(dir, 0o777))
		_, err := lock.New("x", lock.WithDir(dir))
		require.ErrorIs(t, err, lock.ErrUnsafePath)
		require.NoError(t, os.Chmod(dir, 0o777|os.ModeSticky))
		_, err = lock.New("x", lock.WithDir(dir))
		require.NoError(t, err)
	})
	t.Run("directory is a file", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "file")
		require.NoError(t, os.WriteFile(f, nil, 0o644))
		_, err := lock.New("x", lock.WithDir(f))
		require.ErrorIs(t, err, syscall.ENOTDIR)
	})
}

func TestFileModesIgnoreUmask(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix modes")
	}
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	l, err := newC(t, dir, "modes").Acquire(context.Background())
	require.NoError(t, err)
	defer l.Release()
	for _, f := range []string{"modes.lock", "modes.holder"} {
		st, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o666), st.Mode().Perm(), f)
	}
}

// TestPermissionDenied runs a child as an unprivileged user against a
// directory it may not write: a typed error, never an unlocked run.
func TestPermissionDenied(t *testing.T) {
	if runtime.GOOS == "windows" || os.Geteuid() != 0 {
		t.Skip("needs root to start a child as another user (and a non-root run cannot bypass permissions anyway)")
	}
	top, err := os.MkdirTemp("", "denied")
	require.NoError(t, err)
	defer os.RemoveAll(top)
	require.NoError(t, os.Chmod(top, 0o755))
	dir := filepath.Join(top, "locks")
	require.NoError(t, os.Mkdir(dir, 0o755))
	// The child must be able to run the test binary.
	exe, err := os.Executable()
	require.NoError(t, err)
	b, err := os.ReadFile(exe)
	require.NoError(t, err)
	exe = filepath.Join(top, "lock.test")
	require.NoError(t, os.WriteFile(exe, b, 0o755))
	cmd := proctest.Command(exe, "locktest-try", dir, "denied")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	t.Logf("child exit: %v", err)
	t.Logf("child as uid 65534: %s", out)
	assert.Contains(t, string(out), "permission denied")
	assert.True(t, strings.HasPrefix(string(out), "error "), "got %q", out)
}
