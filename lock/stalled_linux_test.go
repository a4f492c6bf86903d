package lock_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

const roleStalled = "stalled"

func init() { proctest.Role(roleStalled, stalledRole) }

// stalledRole: args dir name. Puts itself where a holder of this
// package is between locking the lock file and publishing its record,
// and stays there (as one stopped or starved there would): it opens the
// lock's files through the package (an acquisition and release), then
// locks the lock file with flock(2) and publishes nothing. Says
// "locked", and holds until its input closes.
func stalledRole(args []string, in *bufio.Scanner, out *proctest.Writer) int {
	c, err := lock.New(args[1], lock.WithDir(args[0]))
	if err != nil {
		return out.Fail(err)
	}
	l, err := c.TryAcquire(context.Background())
	if err != nil {
		return out.Fail(err)
	}
	if err := l.Release(); err != nil {
		return out.Fail(err)
	}
	f, err := os.Open(filepath.Join(args[0], args[1]+".lock"))
	if err == nil {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err != nil {
		return out.Fail(err)
	}
	out.Println("locked")
	for in.Scan() {
	}
	return 0
}

// TestStalledHolderIsNotForeign: a holder of this package that has
// locked but not yet published its record, for longer than the grace
// allowed for publishing, is reported by pid and host as this package's
// holder, never as a foreign one (which it was, once a loaded machine
// delayed a holder's publish past the grace).
func TestStalledHolderIsNotForeign(t *testing.T) {
	dir := proctest.TempDir(t)
	c, err := lock.New("x", lock.WithDir(dir))
	require.NoError(t, err)
	ch := proctest.Start(t, roleStalled, dir, "x")
	ch.Expect("locked", time.Minute)
	pid := ch.PID()

	// Holder waits for the record while its context allows, then says
	// why it stopped.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = c.Holder(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// An Acquire whose context ends while it waits names the holder,
	// without waiting for a record that is not coming.
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = c.Acquire(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var we *lock.BusyError
	require.ErrorAs(t, err, &we)
	require.Equal(t, pid, we.Holder.PID, "%v", err)

	h, err := c.Holder(context.Background())
	require.NoError(t, err)
	require.Equal(t, pid, h.PID)
	require.False(t, h.Foreign, "a holder of this package reported as foreign: %+v", h)
	require.True(t, h.Local())

	_, err = c.TryAcquire(context.Background())
	var be *lock.BusyError
	require.ErrorAs(t, err, &be)
	require.Equal(t, pid, be.Holder.PID)
	require.False(t, be.Holder.Foreign, "%v", err)
	require.NotContains(t, err.Error(), "without this package")
}

// TestForeignSharedFlockHolder: a process holding a shared flock(2) on
// the lock file (flock -s) excludes this package's holders as well as an
// exclusive one does, and is reported the same way: by pid, foreign.
func TestForeignSharedFlockHolder(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("no flock(1)")
	}
	dir := proctest.TempDir(t)
	c, err := lock.New("x", lock.WithDir(dir))
	require.NoError(t, err)
	l, err := c.Acquire(context.Background())
	require.NoError(t, err)
	require.NoError(t, l.Release())
	cmd := exec.Command("flock", "-s", filepath.Join(dir, "x.lock"), "sh", "-c", "echo locked; exec sleep 60")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	require.Equal(t, "locked\n", line, "flock(1) did not lock")

	h, err := c.Holder(context.Background())
	require.NoError(t, err)
	require.Equal(t, cmd.Process.Pid, h.PID)
	require.True(t, h.Foreign)
	_, err = c.TryAcquire(context.Background())
	var be *lock.BusyError
	require.ErrorAs(t, err, &be)
	require.Equal(t, cmd.Process.Pid, be.Holder.PID)
}
