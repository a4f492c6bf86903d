package lock_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

func TestNames(t *testing.T) {
	dir := proctest.TempDir(t)
	good := []string{"pcm-install", "a", "0", "agent.v2", "a_b-c.d", strings.Repeat("x", 64), "com10", "console", "lpt", "nul-x", "conx.y"}
	bad := []string{"", ".", "..", "-x", ".hidden", "_x", "a/b", `a\b`, "a\x00b", "Install", "ABC", "con", "CON", "con.lock", "nul", "aux.x", "prn", "com1", "com0.a", "lpt9", "trailing.", "sp ace", "trailing ", "tab\t", "é", strings.Repeat("x", 65), "a:b", "a*b", "a?b", `a"b`, "a<b", "a>b", "a|b"}
	for _, n := range good {
		_, err := lock.New(n, lock.WithDir(dir))
		assert.NoError(t, err, "name %q", n)
	}
	for _, n := range bad {
		c, err := lock.New(n, lock.WithDir(dir))
		assert.ErrorIs(t, err, lock.ErrInvalidName, "name %q", n)
		assert.Nil(t, c)
	}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, ents, "New must not create files")
}

// FuzzName: every name is either accepted, and then only made of the
// portable characters, or refused with ErrInvalidName before anything
// touches the file system.
func FuzzName(f *testing.F) {
	for _, s := range []string{"pcm-install", "", "..", "CON", "com1.x", "a/b", "x\x00", strings.Repeat("y", 65), "ok.name_1"} {
		f.Add(s)
	}
	dir := proctest.TempDir(f)
	f.Fuzz(func(t *testing.T, name string) {
		_, err := lock.New(name, lock.WithDir(dir))
		if err != nil {
			if !errors.Is(err, lock.ErrInvalidName) {
				t.Fatalf("New(%q): %v does not match ErrInvalidName", name, err)
			}
			return
		}
		if len(name) == 0 || len(name) > lock.MaxNameLen || strings.ContainsAny(name, "/\\\x00 :*?\"<>|") || strings.ToLower(name) != name {
			t.Fatalf("New accepted %q", name)
		}
	})
}

// TestBackendsValidateNames: a backend used directly, without a
// Coordinator, refuses the same names.
func TestBackendsValidateNames(t *testing.T) {
	dir := proctest.TempDir(t)
	fb, err := lock.NewFileBackend(dir)
	require.NoError(t, err)
	mb, err := lock.NewNamedMutexBackend(lock.WithMutexDir(dir))
	require.NoError(t, err)
	for _, b := range []lock.Backend{fb, mb} {
		for _, name := range []string{"../x", "", "a/b", "CON"} {
			_, err := b.Acquire(context.Background(), lock.Request{Name: name})
			assert.ErrorIs(t, err, lock.ErrInvalidName, "%T Acquire %q", b, name)
			_, err = b.Holder(context.Background(), name)
			assert.ErrorIs(t, err, lock.ErrInvalidName, "%T Holder %q", b, name)
		}
	}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, ents)
}
