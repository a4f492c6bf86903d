//go:build dragonfly || netbsd || openbsd

package oslock

// deathNotes is empty: the kqueue of these systems reports neither
// unlocks nor closes, so a holder's death is noticed within
// fallbackWait.
const deathNotes = 0
