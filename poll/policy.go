package poll

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/agentlock/agentlock/lock"
)

// An Event describes one look at a busy lock: who holds it, for how
// long it has been busy, and when the next look is due. A Poller builds
// one on every busy cycle and passes it to its Policy; only events the
// policy lets through reach the OnBusy callback.
//
// All times are read from the poller's clock, so a Policy that needs
// "now" (RateLimit) takes it from Now and never reads a clock itself.
type Event struct {
	Lock string // the lock's name

	// Holder is the record the holder published. Its PID is 0 when the
	// holder had not published a record yet or the record could not be
	// read (see lock.BusyError).
	Holder lock.Holder

	// Since is when the lock became busy, as far as can be told: the
	// earlier of the moment this poller first found it busy in the
	// current unbroken run of busy cycles, and the holder's own
	// Holder.Since. The first alone would make a poller started in the
	// middle of a long install wait a whole grace period before saying
	// anything; the second alone would restart the clock whenever the
	// installer drops and retakes the lock between two looks. A cycle
	// that acquires the lock or fails with an error ends the run.
	Since time.Time

	// Busy is Now.Sub(Since): how long the holder has been busy, as
	// far as can be told. It is what a message such as "installing
	// Office 97 for 12 s" should show, and what After compares.
	Busy time.Duration

	// Waited is how long this poller has been finding the lock busy:
	// Now minus the first busy look of the current run. It is what "you
	// have waited 12 s" should show. It is never more than Busy.
	Waited time.Duration

	// Attempt counts the busy cycles of the current run: 1 for the
	// first cycle that found the lock busy, 2 for the next, and so on.
	Attempt int

	// Now is when the lock was found busy.
	Now time.Time

	// Next is when the next look is due (Poller.Trigger can bring it
	// forward).
	Next time.Time
}

// newEvent builds the event of a busy look at now, in a run of busy
// looks that began at runStart.
func newEvent(name string, h lock.Holder, runStart time.Time, attempt int, now, next time.Time) Event {
	since := runStart
	// The holder's own Since counts only if it was read from this
	// machine's clock: another machine's clock (a distributed backend)
	// may be ahead or behind, and would make a short hold look long.
	if h.PID != 0 && !h.Since.IsZero() && h.Since.Before(since) && h.Local() {
		since = h.Since
	}
	return Event{
		Lock:    name,
		Holder:  h,
		Since:   since,
		Busy:    max(now.Sub(since), 0),
		Waited:  max(now.Sub(runStart), 0),
		Attempt: attempt,
		Now:     now,
		Next:    next,
	}
}

// A Policy decides which busy events become notifications.
//
// The built-in policies are safe for concurrent use. Most are pure
// functions of the event; RateLimit remembers what it let through, so
// one RateLimit value shared by two pollers limits them together, and
// in All it must come last (see All).
type Policy interface {
	// Notify reports whether e should be passed to the notifier.
	Notify(e Event) bool
}

// PolicyFunc adapts a function to the Policy interface.
type PolicyFunc func(Event) bool

// Notify returns f(e).
func (f PolicyFunc) Notify(e Event) bool { return f(e) }

// The built-in policies implement fmt.Stringer, so that a program can
// show the policy in effect, in the grammar of ParsePolicy: "always",
// "never", "after=30s", "purpose=installing*|updating*", "every=1m0s",
// and for All the terms of its policies joined by ';' (All() is
// "always"). ParsePolicy reads these back to the same policy, except
// that it puts a rate limit last and refuses a text with a kind of term
// twice, or always or never beside other terms. Any is shown as
// "any(a;b)", which ParsePolicy does not read (the grammar has no "or"),
// and a policy of another type by its Go type name.

type constPolicy bool

func (p constPolicy) Notify(Event) bool { return bool(p) }

func (p constPolicy) String() string {
	if p {
		return "always"
	}
	return "never"
}

// Always notifies on every busy event: the behaviour of the classic
// poller, kept for programs that really want it.
func Always() Policy { return constPolicy(true) }

// Never notifies on no busy event: the off switch.
func Never() Policy { return constPolicy(false) }

type afterPolicy time.Duration

func (p afterPolicy) Notify(e Event) bool { return e.Busy >= time.Duration(p) }
func (p afterPolicy) String() string      { return "after=" + time.Duration(p).String() }

// After notifies only once the lock has been busy for at least grace
// (Event.Busy >= grace), so a short hold, such as a query of the
// instruction file, never makes the user think something is being
// installed. After(0) notifies always.
func After(grace time.Duration) Policy {
	if grace < 0 {
		panic("poll: After: negative grace period")
	}
	return afterPolicy(grace)
}

type purposePolicy []string

func (p purposePolicy) Notify(e Event) bool {
	for _, pat := range p {
		if matchPurpose(pat, e.Holder.Purpose) {
			return true
		}
	}
	return false
}

func (p purposePolicy) String() string { return "purpose=" + strings.Join(p, "|") }

func matchPurpose(pattern, purpose string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(purpose, prefix)
	}
	return pattern == purpose
}

// Purposes notifies only when the holder's purpose matches one of the
// patterns: a pattern ending in '*' matches every purpose that begins
// with the text before the '*' ("installing*" matches "installing
// Office 97", and "*" matches every purpose, even an empty one); any
// other pattern matches that exact purpose. Matching is case-sensitive.
// A '*' anywhere but at the end is an ordinary character. With no
// patterns, Purposes notifies on nothing.
//
// A holder that has not published a record yet has the empty purpose.
func Purposes(patterns ...string) Policy {
	return purposePolicy(append([]string(nil), patterns...))
}

// holderKey identifies one holder: one run of one process (its pid,
// host and start stamp), across its acquisitions, so that an installer
// that takes and releases the lock once per package is still one holder
// for the rate limit.
type holderKey struct {
	pid   int
	host  string
	start uint64
}

type rateLimit struct {
	every time.Duration

	mu   sync.Mutex
	last map[holderKey]time.Time // when each hold was last let through
}

// RateLimit lets through at most one event per holder per period
// every: an event passes if no event of the same holder (same process:
// pid, host and process start, whatever its acquisitions) passed in the
// period before its Now. It measures time with Event.Now, never with a clock
// of its own.
//
// RateLimit remembers what it let through, so it must see only the
// events that will really be notified: in All, put it last.
func RateLimit(every time.Duration) Policy {
	if every <= 0 {
		panic("poll: RateLimit: period must be positive")
	}
	return &rateLimit{every: every, last: make(map[holderKey]time.Time)}
}

func (r *rateLimit) Notify(e Event) bool {
	k := holderKey{e.Holder.PID, e.Holder.Host, e.Holder.ProcessStart}
	r.mu.Lock()
	defer r.mu.Unlock()
	// Forget the holds whose period is over, so the map holds at most
	// the holds seen within one period.
	for hk, t := range r.last {
		if e.Now.Sub(t) >= r.every {
			delete(r.last, hk)
		}
	}
	if _, ok := r.last[k]; ok {
		return false
	}
	r.last[k] = e.Now
	return true
}

func (r *rateLimit) String() string { return "every=" + r.every.String() }

type allPolicy []Policy

func (a allPolicy) Notify(e Event) bool {
	for _, p := range a {
		if !p.Notify(e) {
			return false
		}
	}
	return true
}

func (a allPolicy) String() string {
	if len(a) == 0 {
		return "always"
	}
	return joinPolicies(a)
}

type anyPolicy []Policy

func (a anyPolicy) Notify(e Event) bool {
	for _, p := range a {
		if p.Notify(e) {
			return true
		}
	}
	return false
}

func (a anyPolicy) String() string { return "any(" + joinPolicies(a) + ")" }

func joinPolicies(ps []Policy) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		if st, ok := p.(fmt.Stringer); ok {
			s[i] = st.String()
		} else {
			s[i] = fmt.Sprintf("%T", p)
		}
	}
	return strings.Join(s, ";")
}

// All notifies when every policy does. It asks them in order and stops
// at the first that says no, so a stateful policy (RateLimit) placed
// last only counts events that every other policy let through. All()
// notifies always.
func All(ps ...Policy) Policy {
	checkPolicies("All", ps)
	return allPolicy(append([]Policy(nil), ps...))
}

// Any notifies when at least one policy does. It asks them in order and
// stops at the first that says yes. Any() notifies never.
func Any(ps ...Policy) Policy {
	checkPolicies("Any", ps)
	return anyPolicy(append([]Policy(nil), ps...))
}

func checkPolicies(fn string, ps []Policy) {
	for _, p := range ps {
		if p == nil {
			panic("poll: " + fn + ": nil Policy")
		}
	}
}

// DefaultGrace is the grace period of DefaultPolicy.
const DefaultGrace = 10 * time.Second

// DefaultPolicy returns the policy a Poller uses unless told otherwise:
// After(DefaultGrace). A lock held for less than that (a query, a quick
// update of the instruction file) never produces a notification.
func DefaultPolicy() Policy { return After(DefaultGrace) }
