// Package recheck marks the context of a precondition that the lock
// package runs a second time, right after taking the lock
// (lock.WithRecheck), so that a check which remembers what it validated
// (logon.Validation) can tell that re-check from the check of a new
// acquisition. It lets the two packages agree without either importing
// the other.
package recheck

import "context"

type key struct{}

// With returns ctx marked as the context of a re-check.
func With(ctx context.Context) context.Context { return context.WithValue(ctx, key{}, true) }

// Is reports whether ctx is the context of a re-check.
func Is(ctx context.Context) bool { v, _ := ctx.Value(key{}).(bool); return v }
