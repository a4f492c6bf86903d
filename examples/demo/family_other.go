//go:build !linux

package main

import "os/exec"

// dieWithParent does nothing here: there is no parent-death signal, and
// the child ends through the parent-death pipe alone.
func dieWithParent(*exec.Cmd) {}
