package poll

import "time"

// timer is a *time.Timer whose Reset and Stop leave no stale tick in
// its channel. That is already so when the main module's go directive
// is 1.23 or later; for an older one (GODEBUG asynctimerchan=1) Stop
// drains the channel: the module using this package decides.
type timer struct{ t *time.Timer }

func newTimer(d time.Duration) timer { return timer{time.NewTimer(d)} }

func (t timer) C() <-chan time.Time   { return t.t.C }
func (t timer) Reset(d time.Duration) { t.Stop(); t.t.Reset(d) }

func (t timer) Stop() {
	if !t.t.Stop() {
		select {
		case <-t.t.C:
		default:
		}
	}
}
