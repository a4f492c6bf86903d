// Package scenario holds tests that run the whole story across
// processes: the logon check, the lock and the holder record together
// (DESIGN §1). It has no code of its own.
package scenario
