package lock

import (
	"fmt"
	"strings"
)

// MaxNameLen is the longest lock name, in bytes.
const MaxNameLen = 64

// ValidName reports whether name is a valid lock name: 1 to MaxNameLen
// bytes of lower-case ASCII letters, digits, '.', '_' and '-', starting
// with a letter or digit, not ending with '.', and not a name Windows
// reserves for a device. The rules are the same on every system, so a
// name means the same lock everywhere (which is why upper case is
// refused rather than folded). New and the backends refuse other names
// with an error matching ErrInvalidName that says why, before any file
// is touched.
func ValidName(name string) bool { return validateName(name) == nil }

// validateName applies the same rules on every operating system, so a
// name that works on a developer's Linux machine also works on the
// Windows and macOS machines the program ships to, and means the same
// lock there.
//
// A name is 1 to 64 bytes of lower-case ASCII letters, digits, '.', '_'
// and '-'; it starts with a letter or digit and does not end with '.'.
// Upper case is refused rather than folded because Windows and macOS
// file systems ignore case while Linux does not: "Install" and
// "install" would be one lock on some machines and two on others.
// Names that Windows reserves for devices (con, prn, aux, nul, com0-9,
// lpt0-9, alone or before a '.') are refused everywhere.
func validateName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("lock: %w %q: %s", ErrInvalidName, name, why)
	}
	switch {
	case name == "":
		return fmt.Errorf("lock: %w: empty name", ErrInvalidName)
	case len(name) > MaxNameLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxNameLen))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '.' || c == '_' || c == '-':
			if i == 0 {
				return bad("must start with a letter or digit")
			}
		case 'A' <= c && c <= 'Z':
			return bad("upper-case letters are not allowed (names must mean the same lock on case-insensitive file systems)")
		case c == '/' || c == '\\':
			return bad("path separators are not allowed")
		case c == 0:
			return bad("NUL bytes are not allowed")
		default:
			return bad(fmt.Sprintf("character %q is not allowed (use a-z, 0-9, '.', '_', '-')", c))
		}
	}
	if name[len(name)-1] == '.' {
		return bad("must not end with '.'")
	}
	base, _, _ := strings.Cut(name, ".")
	switch base {
	case "con", "prn", "aux", "nul":
		return bad("reserved device name on Windows")
	}
	if len(base) == 4 && (strings.HasPrefix(base, "com") || strings.HasPrefix(base, "lpt")) && '0' <= base[3] && base[3] <= '9' {
		return bad("reserved device name on Windows")
	}
	return nil
}
