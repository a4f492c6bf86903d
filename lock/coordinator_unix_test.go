//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package lock_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/locktest"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

func TestUnsafePaths(t *testing.T) {
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
	if os.Geteuid() != 0 {
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
	cmd := proctest.Command(exe, locktest.RoleTry, dir, "denied")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	t.Logf("child exit: %v", err)
	t.Logf("child as uid 65534: %s", out)
	assert.Contains(t, string(out), "permission denied")
	assert.True(t, strings.HasPrefix(string(out), "error "), "got %q", out)
}

// TestDefaultDirServiceAndDesktop: two programs calling New with the
// same name and no WithDir contend on the same lock, including a
// privileged one (this process, as root) and an unprivileged one (a
// child as uid 65534), whichever of them creates the files.
func TestDefaultDirServiceAndDesktop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a child as another user")
	}
	ctx := context.Background()
	exe := copyTestBinary(t)
	// With Linux's strictest protected_regular setting, O_CREAT on a file
	// that someone else created in a sticky directory fails even for
	// root; openFile avoids O_CREAT for existing files. Use the setting
	// for the duration of the test where it can be changed.
	const knob = "/proc/sys/fs/protected_regular"
	if old, err := os.ReadFile(knob); err == nil {
		if os.WriteFile(knob, []byte("2"), 0) == nil {
			t.Logf("%s: 2 (was %s)", knob, strings.TrimSpace(string(old)))
			t.Cleanup(func() { os.WriteFile(knob, old, 0) })
		}
	}
	for i, who := range []string{"service", "desktop"} {
		// A fresh name per run, removed afterwards (only tests delete
		// lock files; this process keeps the files of names it used
		// open, so a name must not be reused after its files are gone).
		name := fmt.Sprintf("agentlock-selftest-%d-%d", os.Getpid(), i)
		t.Cleanup(func() { removeDefaultFiles(t, name) })
		c, err := lock.New(name)
		require.NoError(t, err, "the default directory must be usable")
		if who == "desktop" {
			// The desktop program creates the files this time.
			out, err := runAs(exe, locktest.RoleTry, "", name)
			require.NoError(t, err, "%s", out)
			require.True(t, strings.HasPrefix(out, "locked "), "unprivileged child: %q", out)
		}
		l, err := c.Acquire(ctx, lock.WithPurpose("service"))
		require.NoError(t, err)
		out, err := runAs(exe, locktest.RoleTry, "", name)
		require.NoError(t, err, "%s", out)
		assert.Equal(t, fmt.Sprintf("busy %d service\n", os.Getpid()), out, "the unprivileged program must see the service's lock")
		require.NoError(t, l.Release())
		out, err = runAs(exe, locktest.RoleTry, "", name)
		require.NoError(t, err, "%s", out)
		assert.True(t, strings.HasPrefix(out, "locked "), "got %q", out)
	}
}

// copyTestBinary copies the test binary where another user can run it.
func copyTestBinary(t *testing.T) string {
	t.Helper()
	top, err := os.MkdirTemp("", "agentlock-bin")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(top) })
	require.NoError(t, os.Chmod(top, 0o755))
	exe, err := os.Executable()
	require.NoError(t, err)
	b, err := os.ReadFile(exe)
	require.NoError(t, err)
	dst := filepath.Join(top, "lock.test")
	require.NoError(t, os.WriteFile(dst, b, 0o755))
	return dst
}

// runAs runs the test binary in role as uid/gid 65534, with the locktest
// roles' arguments (dir "" means the default directory).
func runAs(exe, role string, args ...string) (string, error) {
	cmd := proctest.Command(exe, role, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.Output()
	return string(out), err
}

// removeDefaultFiles removes a test lock's files from the default
// directory. Only tests do this: the library never deletes lock files.
func removeDefaultFiles(t *testing.T, name string) {
	t.Helper()
	for _, dir := range []string{"/run/lock", "/var/tmp"} {
		os.Remove(filepath.Join(dir, name+".lock"))
		os.Remove(filepath.Join(dir, name+".holder"))
	}
}
