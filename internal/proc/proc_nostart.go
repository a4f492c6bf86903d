//go:build unix && !linux && !darwin

package proc

// On the BSDs, Solaris, illumos and AIX the start stamp is not read: a
// reused pid of a dead holder is reported as alive. The lock itself is
// unaffected (only the kernel decides ownership); only Holder's answer
// in that rare case is too cautious.

func bootID() (id [16]byte) { return id }

func startStamp(pid int) (uint64, error) { return 0, nil }

func inspect(pid int) (exists bool, start uint64) { return signalZero(pid), 0 }
