//go:build !race

// Package racebuild tells tests whether they were built with the race
// detector, for the few tests that cannot run under it.
package racebuild

// Enabled reports whether the program was built with the race detector.
const Enabled = false
