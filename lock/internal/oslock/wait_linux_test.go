package oslock

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentlock/agentlock/internal/record"
)

// liveHolder is a Waiter whose lock is watched and held by a live
// holder that publishes records: its sleeps are the long safety-net
// ones.
type liveHolder struct{ ws WaitState }

func (*liveHolder) Moved() bool                  { return false }
func (*liveHolder) Watched() bool                { return true }
func (*liveHolder) HolderLive(*record.Page) bool { return true }
func (w *liveHolder) WaitState() *WaitState      { return &w.ws }

// TestFallbackSchedule: safety-net sleeps that time out double up to
// maxFallbackWait and stay there; a wake-up starts again from
// fallbackWait; short sleeps (a foreign holder's) and interrupted ones
// change nothing.
func TestFallbackSchedule(t *testing.T) {
	const ms = time.Millisecond
	cur := fallbackWait
	var got []time.Duration
	for range 6 {
		cur = nextFallback(cur, cur, unix.ETIMEDOUT)
		got = append(got, cur)
	}
	want := []time.Duration{2 * fallbackWait, 4 * fallbackWait, maxFallbackWait, maxFallbackWait, maxFallbackWait, maxFallbackWait}
	if fallbackWait != 250*ms || maxFallbackWait != time.Second || !slices.Equal(got, want) {
		t.Fatalf("timeouts after timeouts: %v, want %v", got, want)
	}
	for _, tc := range []struct {
		cur, d time.Duration
		err    error
		want   time.Duration
	}{
		{maxFallbackWait, maxFallbackWait, nil, fallbackWait},
		{maxFallbackWait, maxFallbackWait, unix.EAGAIN, fallbackWait},
		{maxFallbackWait, 10 * ms, unix.EAGAIN, fallbackWait},
		{fallbackWait, foreignWait, unix.ETIMEDOUT, fallbackWait},
		{fallbackWait, ms, unix.ETIMEDOUT, fallbackWait},
		{fallbackWait, unwatchedWait, unix.ETIMEDOUT, fallbackWait},
		{2 * fallbackWait, 2 * fallbackWait, unix.EINTR, 2 * fallbackWait},
	} {
		if got := nextFallback(tc.cur, tc.d, tc.err); got != tc.want {
			t.Errorf("nextFallback(%v, %v, %v) = %v, want %v", tc.cur, tc.d, tc.err, got, tc.want)
		}
	}
}

// TestLostWakeUpCaughtBySafetyNet: a release that wakes nobody (as when
// the sleeper it woke stopped before its attempt) leaves a sleeper
// asleep only until its timeout, which grows while it sleeps but never
// past maxFallbackWait, however long the wait has lasted.
func TestLostWakeUpCaughtBySafetyNet(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.lock")
	holder, waiter := openT(t, path), openT(t, path) // two descriptions: they exclude each other
	b, err := MapPage(openT(t, filepath.Join(dir, "x.holder")), true)
	if err != nil {
		t.Fatal(err)
	}
	page := record.NewPage(b)
	if err := TryLock(holder); err != nil {
		t.Fatal(err)
	}

	got := make(chan error, 1)
	go func() { got <- Wait(context.Background(), waiter, page, &liveHolder{}) }()
	// Long enough for the sleeps to have grown to their longest.
	time.Sleep(2*fallbackWait + 2*maxFallbackWait)
	select {
	case err := <-got:
		t.Fatalf("Wait returned while the lock was held: %v", err)
	default:
	}
	if err := Unlock(holder); err != nil { // no ReleaseWake: a lost wake-up
		t.Fatal(err)
	}
	unlocked := time.Now()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("taken %v after a release that woke nobody", time.Since(unlocked))
	case <-time.After(maxFallbackWait + 10*time.Second):
		t.Fatalf("a sleeper whose wake-up was lost still slept %v after the release", time.Since(unlocked))
	}
}

// openT opens path with Open, creating it, and closes it when the test
// ends.
func openT(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := Open(path, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
