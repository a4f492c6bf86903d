package lock

import (
	"errors"
	"runtime"
	"strings"
	"testing"
)

func TestMutexObjectName(t *testing.T) {
	for _, tc := range []struct {
		scope MutexScope
		name  string
		want  string
	}{
		{ScopeGlobal, "pcm-install", `Global\agentlock.pcm-install`},
		{ScopeLocal, "pcm-install", `Local\agentlock.pcm-install`},
		{MutexScope(0), "a.b_c", `Global\agentlock.a.b_c`}, // the zero scope is Global
	} {
		if got := mutexObjectName(tc.scope, tc.name); got != tc.want {
			t.Errorf("mutexObjectName(%v, %q) = %q, want %q", tc.scope, tc.name, got, tc.want)
		}
	}
	// A valid name never adds a namespace separator: the object name has
	// exactly the one backslash after the scope.
	for _, n := range []string{"a", "x-1", strings.Repeat("z", MaxNameLen)} {
		if err := validateName(n); err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(mutexObjectName(ScopeLocal, n), `\`); got != 1 {
			t.Errorf("object name for %q has %d backslashes", n, got)
		}
	}
}

func TestMutexFileName(t *testing.T) {
	if got, want := mutexFileName(ScopeGlobal, 7, "x"), "_mutex.x"; got != want {
		t.Errorf("global: %q, want %q", got, want)
	}
	if got, want := mutexFileName(ScopeLocal, 7, "x"), "_mutex."+localPrefix+"7.x"; got != want {
		t.Errorf("local: %q, want %q", got, want)
	}
	// File backend names cannot start with '_', so the namespaces are
	// disjoint.
	if err := validateName(mutexFileName(ScopeGlobal, 0, "x")); !errors.Is(err, ErrInvalidName) {
		t.Errorf("a mutex file name is a valid lock name: %v", err)
	}
}

// TestNameRejectsWhatWindowsRejects checks names that Windows cannot
// use as file names or in a kernel object name.
func TestNameRejectsWhatWindowsRejects(t *testing.T) {
	bad := []string{
		"", "con", "CON", "prn", "aux", "nul", "nul.txt", "com1", "com9.x", "lpt1", "lpt0",
		`a\b`, "a/b", "a:b", "a*b", "a?b", `a"b`, "a<b", "a>b", "a|b", "a\x00b", "a\x1fb",
		"name.", "x.", "..", ".", " a", "a ", "a b", strings.Repeat("a", MaxNameLen+1),
		"Global", "Café",
	}
	for _, n := range bad {
		if err := validateName(n); !errors.Is(err, ErrInvalidName) {
			t.Errorf("validateName(%q) = %v, want ErrInvalidName", n, err)
		}
	}
	good := []string{"a", "com", "com10", "lpt", "console", "nul-1", "pcm-install", "a.b.c", "0", strings.Repeat("a", MaxNameLen)}
	for _, n := range good {
		if err := validateName(n); err != nil {
			t.Errorf("validateName(%q) = %v, want nil", n, err)
		}
	}
}

func TestMutexOptions(t *testing.T) {
	if _, err := NewNamedMutexBackend(WithScope(MutexScope(9))); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("bad scope: %v, want ErrInvalidOption", err)
	}
	if _, err := NewNamedMutexBackend(WithMutexDir("")); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("empty dir: %v, want ErrInvalidOption", err)
	}
	if _, err := NewNamedMutexBackend(MutexOption{}); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("zero option: %v, want ErrInvalidOption", err)
	}
	_ = runtime.GOOS
}
