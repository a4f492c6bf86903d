//go:build !windows

package lock

import "testing"

// skipOnWine does nothing: Wine runs only Windows programs.
func skipOnWine(t testing.TB, why string) {}

// underWine is false: Wine runs only Windows programs.
func underWine() bool { return false }
