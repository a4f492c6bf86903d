//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package oslock

import (
	"errors"
	"fmt"
	"io/fs"
	"runtime"
)

// defaultDir is /var/tmp: root-owned and sticky on macOS, FreeBSD,
// NetBSD and DragonFly, so every user may create lock files there and
// none may remove another's, and unlike /tmp it is not emptied at boot
// or by the periodic cleaners of /tmp.
//
// OpenBSD has no such directory: its /var/tmp is a symbolic link to
// /tmp, and daily(8) deletes files in /tmp that nobody has read for a
// week, which a lock file never is, so a lock there could be deleted
// under its holder. There the caller names the directory (WithDir).
func defaultDir() (string, error) {
	if runtime.GOOS == "openbsd" {
		return "", &fs.PathError{Op: "lock", Path: "/var/tmp", Err: fmt.Errorf(
			"OpenBSD has no root-owned sticky directory that daily(8) leaves alone; name one with WithDir: %w", errors.ErrUnsupported)}
	}
	return "/var/tmp", nil
}
