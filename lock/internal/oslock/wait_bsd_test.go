//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package oslock

import (
	"context"
	"errors"
	"os"
	"runtime"
	"testing"
	"time"
)

// TestBSDDefaultDir: /var/tmp where it is a root-owned sticky directory
// of its own; on OpenBSD, where it is a link to /tmp, no default.
func TestBSDDefaultDir(t *testing.T) {
	dir, err := defaultDir()
	if runtime.GOOS == "openbsd" {
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Fatalf("defaultDir on OpenBSD = %q, %v; want an error matching errors.ErrUnsupported", dir, err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := checkDir(dir, true); err != nil {
		t.Fatalf("the default directory is refused: %v", err)
	}
}

// TestBSDWaitWithoutKqueueWatch: a wait on a file the kqueue cannot
// watch (here: a closed one) still honours its context instead of
// failing at once.
func TestBSDWaitWithoutKqueueWatch(t *testing.T) {
	f, err := os.CreateTemp("", "agentlock")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	f.Close() // so the kqueue cannot watch it
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	w, err := newKqWait(ctx, f)
	if err != nil {
		t.Fatalf("newKqWait with a watch that cannot be registered: %v", err)
	}
	defer w.close()
	start := time.Now()
	for ctx.Err() == nil {
		if _, err := w.sleep(ctx, fallbackWait); err != nil {
			t.Fatalf("sleep: %v", err)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the wait took %v to notice its context", d)
	}
}
