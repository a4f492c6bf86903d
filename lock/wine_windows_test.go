package lock

import (
	"sync"
	"testing"

	"golang.org/x/sys/windows"
)

// skipOnWine skips a test that checks Windows behaviour Wine does not
// have, with the reason why.
func skipOnWine(t testing.TB, why string) {
	t.Helper()
	if underWine() {
		t.Skip("Wine: " + why)
	}
}

// underWine reports whether the test runs under Wine, whose ntdll has
// wine_get_version.
var underWine = sync.OnceValue(func() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
})
