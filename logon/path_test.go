package logon

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/agentlock/agentlock/lock/locktest/proctest"
	"github.com/stretchr/testify/require"
)

func pathCheck(t *testing.T, dir string, opts ...PathOption) Check {
	t.Helper()
	return validCheck(t)(Path(dir, opts...))
}

func TestPathLive(t *testing.T) {
	dir := proctest.TempDir(t)
	ctx := context.Background()
	require.NoError(t, pathCheck(t, dir)(ctx), "an empty directory is readable")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "INSTRUCTIONS.txt"), []byte("install office97\n"), 0o644))
	require.NoError(t, pathCheck(t, dir)(ctx))
	require.NoError(t, pathCheck(t, dir, WithMarker("INSTRUCTIONS.txt"))(ctx))
}

func TestPathMissing(t *testing.T) {
	dir := filepath.Join(proctest.TempDir(t), "gone")
	ce := requireKind(t, pathCheck(t, dir)(context.Background()), KindNotFound)
	require.Equal(t, dir, ce.Server)
	require.ErrorIs(t, ce, os.ErrNotExist)
}

func TestPathNotDirectory(t *testing.T) {
	file := filepath.Join(proctest.TempDir(t), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	ce := requireKind(t, pathCheck(t, file)(context.Background()), KindNotDirectory)
	require.Equal(t, "logon server "+file+": not a directory", ce.Error())
}

func TestPathUnreadable(t *testing.T) {
	if runtime.GOOS == "windows" {
		// Windows has no permission bits: os.Mkdir(dir, 0) only sets
		// the read-only attribute, which does not stop listing the
		// directory. Denying access takes an ACL, and Wine, which runs
		// the Windows tests in CI, does not enforce ACLs.
		t.Skip("Windows has no mode bits to make a directory unreadable, and Wine does not enforce ACLs")
	}
	if os.Geteuid() == 0 {
		t.Skip("running as root, which can read any directory; permission failures cannot be produced")
	}
	dir := filepath.Join(proctest.TempDir(t), "locked")
	require.NoError(t, os.Mkdir(dir, 0o000))
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	ce := requireKind(t, pathCheck(t, dir)(context.Background()), KindPermission)
	require.ErrorIs(t, ce, os.ErrPermission)
}

func TestPathMarker(t *testing.T) {
	dir := proctest.TempDir(t)
	ce := requireKind(t, pathCheck(t, dir, WithMarker("INSTRUCTIONS.txt"))(context.Background()), KindNotFound)
	require.Equal(t, "logon server "+dir+`: marker file "INSTRUCTIONS.txt" not found`, ce.Error())

	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	requireKind(t, pathCheck(t, dir, WithMarker("sub"))(context.Background()), KindOther)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "sub", "ready"), nil, 0o644))
	require.NoError(t, pathCheck(t, dir, WithMarker(filepath.Join("sub", "ready")))(context.Background()))
}

// TestPathBlockedProbe stands in for a dead share: the file system call
// is held up (by the probe's own in-flight slot), and the check must
// return on its timeout, later calls must join the blocked run rather than
// start more, and a finished run must release the slot.
func TestPathBlockedProbe(t *testing.T) {
	dir := proctest.TempDir(t)
	p, err := newPath(dir, []PathOption{WithTimeout(100 * time.Millisecond)})
	require.NoError(t, err)
	check := Check(p.check)

	// Plant a stuck run: there is no portable way to make a real local
	// stat block.
	stuck := &pathCall{done: make(chan struct{})}
	p.mu.Lock()
	p.call = stuck
	p.mu.Unlock()

	for range 3 {
		start := time.Now()
		requireKind(t, check(context.Background()), KindTimeout)
		require.Less(t, time.Since(start), promptly)
		p.mu.Lock()
		require.Same(t, stuck, p.call, "a blocked run must be joined, not duplicated")
		p.mu.Unlock()
	}

	// The stuck run finishes; its result goes to whoever waits, and the
	// next call starts a fresh run.
	p.mu.Lock()
	p.call = nil
	p.mu.Unlock()
	close(stuck.done)
	require.NoError(t, check(context.Background()))
}
