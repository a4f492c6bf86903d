// Package scenario holds tests that run the whole story across
// processes: the logon check, the lock and the holder record together
// (validate the logon server first, take the lock second). It has no code of its own.
package scenario
