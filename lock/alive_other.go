//go:build !linux

package lock

// A procWatch tells whether a process has exited; there is none here,
// and every check of a holder's liveness asks the system (see
// holderFile.holderAlive).
type procWatch struct{}

func watchProcess(int) *procWatch { return nil }

func (*procWatch) exited() (exited, ok bool) { return false, false }

func (*procWatch) close() {}
