//go:build !unix && !windows

package logon

func isRefused(err error) bool     { return false }
func isUnreachable(err error) bool { return false }
