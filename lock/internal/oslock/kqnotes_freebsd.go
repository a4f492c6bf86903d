package oslock

import "golang.org/x/sys/unix"

// deathNotes are the kqueue notes that report a holder's death: FreeBSD
// (11 and later) posts NOTE_CLOSE_WRITE when a descriptor opened for
// writing is closed, as a dying holder's lock file is, and NOTE_CLOSE
// for one opened read-only. Older kernels refuse the flags, and the
// wait then does without them (see watchLockFile).
const deathNotes = unix.NOTE_CLOSE | unix.NOTE_CLOSE_WRITE
