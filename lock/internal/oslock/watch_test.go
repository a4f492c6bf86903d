package oslock

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// watchEvents watches fresh lock and holder files in a temporary
// directory and returns their paths and the events the watch reports.
func watchEvents(t *testing.T) (lockPath, holderPath string, events <-chan Event) {
	t.Helper()
	if !CanWatch {
		t.Skipf("no watch on %s", runtime.GOOS)
	}
	dir := t.TempDir()
	lockPath, holderPath = filepath.Join(dir, "x.lock"), filepath.Join(dir, "x.holder")
	lf, err := Open(lockPath, true)
	if err != nil {
		t.Fatal(err)
	}
	hf, err := Open(holderPath, true)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan Event, 64)
	w, err := WatchFiles(lf, hf, func(ev Event) { ch <- ev })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(); lf.Close(); hf.Close() })
	return lockPath, holderPath, ch
}

// awaitEvent waits for an event with want set, ignoring others.
func awaitEvent(t *testing.T, events <-chan Event, want Event) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev&want != 0 {
				return
			}
		case <-timeout:
			t.Fatalf("no event %b within 30s", want)
		}
	}
}

// TestWatchReportsRemoval: removing either watched file, or renaming
// another file over it, is reported as PathChanged.
func TestWatchReportsRemoval(t *testing.T) {
	lockPath, holderPath, events := watchEvents(t)
	if err := os.Remove(holderPath); err != nil {
		t.Fatal(err)
	}
	awaitEvent(t, events, PathChanged)
	other := filepath.Join(filepath.Dir(lockPath), "other")
	if err := os.WriteFile(other, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, lockPath); err != nil {
		t.Fatal(err)
	}
	awaitEvent(t, events, PathChanged)
}

// TestWatchReportsTruncationAndClose: on Linux, truncating the holder
// file is reported as HolderModified, and a close of the lock file
// through another descriptor as LockClosed.
func TestWatchReportsTruncationAndClose(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("only inotify reports writes and closes")
	}
	lockPath, holderPath, events := watchEvents(t)
	if err := os.Truncate(holderPath, 0); err != nil {
		t.Fatal(err)
	}
	awaitEvent(t, events, HolderModified)
	f, err := os.Open(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	awaitEvent(t, events, LockClosed)
}

// TestWatchClose: after Close the watch reports nothing more, and a
// watch on other files goes on reporting.
func TestWatchClose(t *testing.T) {
	if !CanWatch {
		t.Skipf("no watch on %s", runtime.GOOS)
	}
	dir := t.TempDir()
	lf, err := Open(filepath.Join(dir, "closed.lock"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	hf, err := Open(filepath.Join(dir, "closed.holder"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	closed := make(chan Event, 64)
	w, err := WatchFiles(lf, hf, func(ev Event) { closed <- ev })
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	lockPath, _, events := watchEvents(t)
	if err := os.Remove(filepath.Join(dir, "closed.lock")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(lockPath); err != nil {
		t.Fatal(err)
	}
	// The open watch reports its removal; the closed one, removed
	// first, must not have reported anything by then.
	awaitEvent(t, events, PathChanged)
	select {
	case ev := <-closed:
		t.Fatalf("a closed watch reported %b", ev)
	default:
	}
}
