package poll

import "time"

// clock is the seam through which tests control time. Production code
// uses realClock; tests in this package install a fake with withClock.
type clock interface {
	Now() time.Time
	NewTimer(d time.Duration) timer
}

// timer is the part of *time.Timer the package uses, with the Go 1.23
// semantics: after Reset or Stop no stale tick is received.
type timer interface {
	C() <-chan time.Time
	Reset(d time.Duration)
	Stop()
}

type realClock struct{}

func (realClock) Now() time.Time                 { return time.Now() }
func (realClock) NewTimer(d time.Duration) timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time   { return t.t.C }
func (t realTimer) Reset(d time.Duration) { t.Stop(); t.t.Reset(d) }

// Stop also drains a tick left in the channel, which only happens when
// the main module's go directive is older than 1.23 (GODEBUG
// asynctimerchan=1): the module using this package decides.
func (t realTimer) Stop() {
	if !t.t.Stop() {
		select {
		case <-t.t.C:
		default:
		}
	}
}
