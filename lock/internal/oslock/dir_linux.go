package oslock

// defaultDir is /run/lock: the directory the Filesystem Hierarchy
// Standard gives for lock files shared between programs, on a tmpfs
// (cleared at boot, never by a cleaner while running), root-owned and
// sticky, so that every user may create lock files there and none may
// remove another's.
func defaultDir() (string, error) {
	return "/run/lock", nil
}
