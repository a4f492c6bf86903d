//go:build !windows

package guarded

import "testing"

func underWine() bool { return false }

func skipOnWine(t testing.TB, why string) {}
