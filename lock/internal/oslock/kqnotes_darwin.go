package oslock

import "golang.org/x/sys/unix"

// deathNotes are the kqueue notes that report a holder's release or
// death: macOS posts NOTE_FUNLOCK after every flock unlock, including
// the implicit one when a dead process's descriptors are closed.
const deathNotes = unix.NOTE_FUNLOCK
