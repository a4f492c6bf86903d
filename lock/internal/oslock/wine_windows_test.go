package oslock

import "testing"

// skipOnWine skips a test that checks Windows behaviour Wine does not
// have, with the reason why.
func skipOnWine(t testing.TB, why string) {
	t.Helper()
	if onWine() {
		t.Skip("Wine: " + why)
	}
}

// underWine reports whether the test runs under Wine.
func underWine() bool { return onWine() }
