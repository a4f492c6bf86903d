//go:build !darwin && !dragonfly && !freebsd && !linux && !netbsd && !openbsd && !windows

package lock_test

import (
	"errors"
	"os"
	"testing"

	"github.com/agentlock/agentlock/lock"
)

// TestUnsupportedFailsAtNew: where the file backend cannot work, New
// says so with an error matching errors.ErrUnsupported, before it
// creates anything.
func TestUnsupportedFailsAtNew(t *testing.T) {
	dir, err := os.MkdirTemp("", "agentlock")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dir)
	for _, opts := range [][]lock.Option{nil, {lock.WithDir(dir)}} {
		if _, err := lock.New("x", opts...); !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("New(%v) = %v, want an error matching errors.ErrUnsupported", opts, err)
		}
	}
	if _, err := lock.NewNamedMutexBackend(lock.WithMutexDir(dir)); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("NewNamedMutexBackend = %v, want an error matching errors.ErrUnsupported", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("New created %d files", len(ents))
	}
}
