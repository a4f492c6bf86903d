package lock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/windows"

	"github.com/agentlock/agentlock/lock/internal/oslock"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

// TestHeldLockFilesCannotMove: while a process has a lock's files open
// (which it does for its life), nobody can rename or delete them, so
// nobody can lock a new file at the path beside the holder.
func TestHeldLockFilesCannotMove(t *testing.T) {
	dir := proctest.TempDir(t)
	c, err := New("moved", WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	for _, name := range []string{"moved.lock", "moved.holder"} {
		p := filepath.Join(dir, name)
		if err := os.Rename(p, p+".away"); err == nil {
			t.Errorf("renamed %s while it was held", name)
		}
		if err := os.Remove(p); err == nil {
			t.Errorf("deleted %s while it was held", name)
		}
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s is gone: %v", name, err)
		}
	}
}

// TestDirectoryAtLockPath: a directory planted at NAME.lock or
// NAME.holder is an unsafe path, not a permission error.
func TestDirectoryAtLockPath(t *testing.T) {
	for _, name := range []string{"dir.lock", "dir.holder"} {
		dir := proctest.TempDir(t)
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		c, err := New("dir", WithDir(dir))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.TryAcquire(context.Background())
		if !errors.Is(err, ErrUnsafePath) {
			t.Errorf("%s is a directory: TryAcquire = %v, want ErrUnsafePath", name, err)
		}
	}
}

// TestWorldWritableDirRefused: a directory in which everyone may delete
// files is refused, as Unix refuses a world-writable directory without
// the sticky bit. Wine derives a DACL from the Unix mode and ignores the
// sticky bit, so Z:\tmp (the host's /tmp, mode 1777) grants Everyone
// FILE_DELETE_CHILD there.
func TestWorldWritableDirRefused(t *testing.T) {
	if !underWine() {
		t.Skip(`needs Wine's Z:\tmp; on Windows TestDirSecurityRule covers the rule`)
	}
	if _, err := os.Stat(`Z:\tmp`); err != nil {
		t.Skip(`no Z:\tmp: `, err)
	}
	_, err := New("x", WithDir(`Z:\tmp`))
	if !errors.Is(err, ErrUnsafePath) {
		t.Fatalf(`New in Z:\tmp = %v, want ErrUnsafePath`, err)
	}
}

// TestSessionZeroLocalIsGlobal: in session 0, whose Local\ namespace is
// the global one, a ScopeLocal lease is seen by ScopeGlobal users: the
// same mutex, the same holder record, one sequence of tokens.
func TestSessionZeroLocalIsGlobal(t *testing.T) {
	var s uint32
	if err := windows.ProcessIdToSessionId(windows.GetCurrentProcessId(), &s); err != nil {
		t.Fatal(err)
	}
	if s != 0 {
		t.Skipf("runs in session 0 only (a service, a scheduled task, an SSH session); this is session %d", s)
	}
	dir := proctest.TempDir(t)
	name := "s0-" + time.Now().Format("150405.000000")
	coord := func(scope MutexScope) *Coordinator {
		b, err := NewNamedMutexBackend(WithMutexDir(dir), WithScope(scope))
		if err != nil {
			t.Fatal(err)
		}
		c, err := New(name, WithBackend(b))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	local, global := coord(ScopeLocal), coord(ScopeGlobal)
	ctx := context.Background()
	l, err := local.Acquire(ctx, WithPurpose("local"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := global.Holder(ctx)
	if err != nil || h.Purpose != "local" {
		t.Errorf("ScopeGlobal's Holder while ScopeLocal holds: %+v, %v", h, err)
	}
	tok := l.Token()
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	g, err := global.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	if g.Token() <= tok {
		t.Errorf("token after the local lease %d, want more than %d", g.Token(), tok)
	}
}

// TestDirCreatedByAnotherAccount: a directory made as the default one
// is, but owned by another account (here LocalService, as if a service
// running as LocalService, or a desktop program, had created it first),
// is accepted, and the lock works in it. Setting another owner takes
// SeRestorePrivilege (an elevated administrator); Wine stores no
// owners.
func TestDirCreatedByAnotherAccount(t *testing.T) {
	skipOnWine(t, "Wine does not store owners or DACLs of files")
	dir := filepath.Join(proctest.TempDir(t), "shared")
	if err := oslock.MakeSharedDir(dir); err != nil {
		t.Fatal(err)
	}
	ls, err := windows.CreateWellKnownSid(windows.WinLocalServiceSid)
	if err != nil {
		t.Fatal(err)
	}
	if err := enablePrivilege("SeRestorePrivilege"); err != nil {
		t.Skipf("cannot give the directory another owner: %v", err)
	}
	if err := windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION, ls, nil, nil, nil); err != nil {
		t.Skipf("cannot give the directory another owner: %v", err)
	}
	if err := oslock.CheckDir(dir, true); err != nil {
		t.Fatalf("a shared directory created by LocalService is refused: %v", err)
	}
	// The lock works in it: a lease publishes its record and token
	// there, and Holder reads them back.
	c, err := New("ordering", WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.Acquire(context.Background(), WithPurpose("ordering"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if h, err := c.Holder(context.Background()); err != nil || h.Purpose != "ordering" {
		t.Fatalf("Holder = %+v, %v; want the lease's record", h, err)
	}
}

func enablePrivilege(name string) error {
	runtime.LockOSThread() // for GetLastError below
	defer runtime.UnlockOSThread()
	var luid windows.LUID
	if err := windows.LookupPrivilegeValue(nil, windows.StringToUTF16Ptr(name), &luid); err != nil {
		return err
	}
	var tok windows.Token
	if err := windows.OpenProcessToken(windows.CurrentProcess(), windows.TOKEN_ADJUST_PRIVILEGES|windows.TOKEN_QUERY, &tok); err != nil {
		return err
	}
	defer tok.Close()
	tp := windows.Tokenprivileges{PrivilegeCount: 1}
	tp.Privileges[0] = windows.LUIDAndAttributes{Luid: luid, Attributes: windows.SE_PRIVILEGE_ENABLED}
	if err := windows.AdjustTokenPrivileges(tok, false, &tp, 0, nil, nil); err != nil {
		return err
	}
	// AdjustTokenPrivileges succeeds without the privilege, and says so
	// only through the last error.
	if e := windows.GetLastError(); e == windows.ERROR_NOT_ALL_ASSIGNED {
		return e
	}
	return nil
}
