//go:build race

package racebuild

// Enabled reports whether the program was built with the race detector.
const Enabled = true
