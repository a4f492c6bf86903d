package poll

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// ev returns the event of a look at offset at from t0, at a lock busy
// since t0, held by pid with purpose and token.
func ev(at time.Duration, pid int, token uint64, purpose string) Event {
	h := lock.Holder{PID: pid, Host: "h", Purpose: purpose, Since: t0, Token: token}
	return newEvent("l", h, t0, 1, t0.Add(at), t0.Add(at+time.Second))
}

func TestNewEventSince(t *testing.T) {
	runStart := t0.Add(time.Minute)
	now := runStart.Add(2 * time.Second)
	tests := []struct {
		name   string
		holder lock.Holder
		want   time.Time
	}{
		{"holder since earlier", lock.Holder{PID: 1, Host: localHost(), Since: t0}, t0},
		{"holder on another machine: its clock is not ours", lock.Holder{PID: 1, Host: "elsewhere", Since: t0}, runStart},
		{"holder since later (another hold)", lock.Holder{PID: 1, Host: localHost(), Since: runStart.Add(time.Second)}, runStart},
		{"zero holder", lock.Holder{}, runStart},
		{"no pid, ignore since", lock.Holder{Since: t0}, runStart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEvent("l", tt.holder, runStart, 3, now, now.Add(time.Second))
			assert.Equal(t, tt.want, e.Since)
			assert.Equal(t, now.Sub(tt.want), e.Busy)
			assert.Equal(t, 3, e.Attempt)
			assert.Equal(t, "l", e.Lock)
		})
	}
}

func TestStatelessPolicies(t *testing.T) {
	inst := ev(20*time.Second, 7, 1, "installing Office 97")
	query := ev(20*time.Second, 7, 1, "querying")
	early := ev(time.Second, 7, 1, "installing Office 97")
	anon := ev(20*time.Second, 0, 0, "")
	tests := []struct {
		name string
		p    Policy
		e    Event
		want bool
	}{
		{"always", Always(), early, true},
		{"never", Never(), inst, false},
		{"after, before grace", After(10 * time.Second), early, false},
		{"after, past grace", After(10 * time.Second), inst, true},
		{"after, exactly grace", After(20 * time.Second), inst, true},
		{"after zero", After(0), ev(0, 7, 1, "x"), true},
		{"prefix matches", Purposes("installing*"), inst, true},
		{"prefix does not match", Purposes("installing*"), query, false},
		{"exact matches", Purposes("querying"), query, true},
		{"exact is not prefix", Purposes("installing"), inst, false},
		{"case-sensitive", Purposes("Installing*"), inst, false},
		{"one of several", Purposes("updating*", "installing*"), inst, true},
		{"star matches all", Purposes("*"), anon, true},
		{"empty purpose is no install", Purposes("installing*"), anon, false},
		{"no patterns", Purposes(), inst, false},
		{"all: purpose and grace", All(Purposes("installing*"), After(10*time.Second)), inst, true},
		{"all: grace not reached", All(Purposes("installing*"), After(10*time.Second)), early, false},
		{"all: wrong purpose", All(Purposes("installing*"), After(10*time.Second)), query, false},
		{"all of nothing", All(), inst, true},
		{"any: one yes", Any(Never(), Purposes("querying")), query, true},
		{"any: all no", Any(Never(), Purposes("querying")), inst, false},
		{"any of nothing", Any(), inst, false},
		{"any of all", Any(All(Purposes("querying"), After(0)), All(Purposes("installing*"), After(10*time.Second))), inst, true},
		{"func", PolicyFunc(func(e Event) bool { return e.Holder.PID == 7 }), inst, true},
		{"default before grace", DefaultPolicy(), ev(DefaultGrace-time.Millisecond, 7, 1, ""), false},
		{"default after grace", DefaultPolicy(), ev(DefaultGrace, 7, 1, ""), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.p.Notify(tt.e))
		})
	}
}

func TestRateLimit(t *testing.T) {
	type look struct {
		at    time.Duration
		pid   int
		token uint64
		want  bool
	}
	tests := []struct {
		name  string
		looks []look
	}{
		{"once per period", []look{
			{0, 1, 1, true},
			{time.Second, 1, 1, false},
			{59 * time.Second, 1, 1, false},
			{60 * time.Second, 1, 1, true},
			{61 * time.Second, 1, 1, false},
			{120 * time.Second, 1, 1, true},
		}},
		{"per holder", []look{
			{0, 1, 1, true},
			{time.Second, 2, 5, true},
			{2 * time.Second, 1, 1, false},
			{3 * time.Second, 2, 5, false},
		}},
		{"a new acquisition by the same process is the same holder", []look{
			{0, 1, 1, true},
			{time.Second, 1, 2, false},
			{2 * time.Second, 2, 3, true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := RateLimit(time.Minute)
			for i, l := range tt.looks {
				assert.Equal(t, l.want, p.Notify(ev(l.at, l.pid, l.token, "x")), "look %d at %v", i, l.at)
			}
		})
	}
}

func TestRateLimitLastInAll(t *testing.T) {
	// A rate limit placed last only counts what the others let through:
	// the rejected early looks do not use up its allowance.
	p := All(After(10*time.Second), RateLimit(time.Minute))
	assert.False(t, p.Notify(ev(time.Second, 1, 1, "x")))
	assert.False(t, p.Notify(ev(5*time.Second, 1, 1, "x")))
	assert.True(t, p.Notify(ev(10*time.Second, 1, 1, "x")))
	assert.False(t, p.Notify(ev(20*time.Second, 1, 1, "x")))
	assert.True(t, p.Notify(ev(70*time.Second, 1, 1, "x")))
}

func TestRateLimitForgets(t *testing.T) {
	p := RateLimit(time.Second).(*rateLimit)
	for pid := range 100 {
		p.Notify(ev(0, pid, 1, "x"))
	}
	p.Notify(ev(time.Hour, 1000, 1, "x"))
	assert.Len(t, p.last, 1, "holds whose period is over are forgotten")
}

func TestPolicyConstructorsPanic(t *testing.T) {
	assert.PanicsWithValue(t, "poll: After: negative grace period", func() { After(-1) })
	assert.PanicsWithValue(t, "poll: RateLimit: period must be positive", func() { RateLimit(0) })
	assert.PanicsWithValue(t, "poll: All: nil Policy", func() { All(Always(), nil) })
	assert.PanicsWithValue(t, "poll: Any: nil Policy", func() { Any(nil) })
}

func TestParsePolicy(t *testing.T) {
	def := Purposes("default-marker")
	tests := []struct {
		spec string
		want string // String() of the result
	}{
		{"", "purpose=default-marker"},
		{" ,; ", "purpose=default-marker"},
		{"never", "never"},
		{"OFF", "never"},
		{"0", "never"},
		{"false", "never"},
		{"always", "always"},
		{" On ", "always"},
		{"default", "purpose=default-marker"},
		{"after=30s", "after=30s"},
		{"after = 1m30s", "after=1m30s"},
		{"after=0", "after=0s"},
		{"every=1m", "every=1m0s"},
		{"purpose=installing*", "purpose=installing*"},
		{"purpose=installing Office 97|updating*", "purpose=installing Office 97|updating*"},
		{"purpose=installing*;purpose=updating*", "purpose=installing*|updating*"},
		{"every=5m; purpose=installing*, after=30s", "purpose=installing*;after=30s;every=5m0s"},
		{"default,every=1m,after=10s", "after=10s;purpose=default-marker;every=1m0s"},
		{"AFTER=1s", "after=1s"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			p, err := ParsePolicy(tt.spec, def)
			require.NoError(t, err)
			assert.Equal(t, tt.want, p.(fmt.Stringer).String())
		})
	}
}

// A built-in policy's String is text ParsePolicy reads back to the same
// policy, with the grammar's separator.
func TestPolicyStringsParseBack(t *testing.T) {
	def := Never()
	for _, p := range []Policy{Always(), Never(), After(30 * time.Second), After(0), Purposes("installing*", "updating Office"),
		RateLimit(time.Minute), All(Purposes("installing*"), After(2*time.Second), RateLimit(10*time.Second)), DefaultPolicy()} {
		s := p.(fmt.Stringer).String()
		back, err := ParsePolicy(s, def)
		require.NoError(t, err, s)
		assert.Equal(t, s, back.(fmt.Stringer).String())
		assert.NotContains(t, s, ",")
	}
}

func TestPolicyStrings(t *testing.T) {
	assert.Equal(t, "always", All().(fmt.Stringer).String())
	assert.Equal(t, "any(never;after=1s)", Any(Never(), After(time.Second)).(fmt.Stringer).String())
	assert.Equal(t, "purpose=a*;poll.PolicyFunc", All(Purposes("a*"), PolicyFunc(nil)).(fmt.Stringer).String())
}

func TestParsePolicyErrors(t *testing.T) {
	def := After(42 * time.Second)
	tests := []struct {
		spec, term, msg string
	}{
		{"sometimes", "sometimes", "unknown keyword"},
		{"after=soon", "after=soon", `invalid duration "soon"`},
		{"after=", "after=", "empty value"},
		{"after=-1s", "after=-1s", "negative duration"},
		{"every=0", "every=0", "more than 0"},
		{"after=1s,after=2s", "after=2s", "given twice"},
		{"every=1s;every=2s", "every=2s", "given twice"},
		{"purpose=a||b", "purpose=a||b", "empty purpose pattern"},
		{"purpose=in*stall", "purpose=in*stall", "only at the end"},
		{"color=red", "color=red", `unknown key "color"`},
		{"never,after=10s", "never", "must stand alone"},
		{"after=10s,always", "always", "must stand alone"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			p, err := ParsePolicy(tt.spec, def)
			assert.Equal(t, def, p, "the default is kept")
			require.ErrorIs(t, err, ErrInvalidPolicy)
			var se *SpecError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tt.spec, se.Spec)
			assert.Equal(t, tt.term, se.Term)
			assert.Contains(t, err.Error(), tt.msg)
			assert.NotContains(t, err.Error(), "using the default", "the program, not the library, says whether the default is used")
		})
	}
}

func TestPolicyFromEnv(t *testing.T) {
	const name = "AGENTLOCK_NOTIFY_TEST"
	def := After(42 * time.Second)

	p, err := PolicyFromEnv(name, def)
	require.NoError(t, err, "unset")
	assert.Equal(t, def, p)

	t.Setenv(name, "")
	p, err = PolicyFromEnv(name, def)
	require.NoError(t, err, "empty")
	assert.Equal(t, def, p)

	t.Setenv(name, "never")
	p, err = PolicyFromEnv(name, def)
	require.NoError(t, err)
	assert.False(t, p.Notify(ev(time.Hour, 1, 1, "installing X")))

	t.Setenv(name, "purpose=installing*;after=500ms")
	p, err = PolicyFromEnv(name, def)
	require.NoError(t, err)
	assert.True(t, p.Notify(ev(time.Second, 1, 1, "installing X")))
	assert.False(t, p.Notify(ev(100*time.Millisecond, 1, 1, "installing X")))
	assert.False(t, p.Notify(ev(time.Second, 1, 1, "querying")))

	t.Setenv(name, "after=5 minutes")
	p, err = PolicyFromEnv(name, def)
	assert.Equal(t, def, p)
	require.ErrorIs(t, err, ErrInvalidPolicy)
	assert.Equal(t, `poll: invalid notification policy in $AGENTLOCK_NOTIFY_TEST "after=5 minutes": term "after=5 minutes": time: unknown unit " minutes" in duration "5 minutes"`, err.Error())
}

func TestPolicyFromFile(t *testing.T) {
	dir := proctest.TempDir(t)
	def := After(42 * time.Second)
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
		return path
	}

	p, err := PolicyFromFile(filepath.Join(dir, "missing.conf"), def)
	require.NoError(t, err, "a missing file is no error")
	assert.Equal(t, def, p)

	p, err = PolicyFromFile(write("good.conf", "# notify on installs only\npurpose = installing*  # not queries\n\nafter = 30s\r\nevery=1m\n"), def)
	require.NoError(t, err)
	assert.Equal(t, "purpose=installing*;after=30s;every=1m0s", p.(fmt.Stringer).String())

	p, err = PolicyFromFile(write("off.conf", "off\n"), def)
	require.NoError(t, err)
	assert.Equal(t, Never(), p)

	path := write("bad.conf", "after=30s\nafter=1m\n")
	p, err = PolicyFromFile(path, def)
	assert.Equal(t, def, p)
	require.ErrorIs(t, err, ErrInvalidPolicy)
	assert.Contains(t, err.Error(), path)
	assert.Contains(t, err.Error(), "after= given twice")

	path = write("big.conf", string(make([]byte, maxPolicyFile+1)))
	p, err = PolicyFromFile(path, def)
	assert.Equal(t, def, p)
	require.ErrorIs(t, err, ErrInvalidPolicy)
	assert.Equal(t, "poll: invalid notification policy in "+path+": file larger than 65536 bytes", err.Error())

	p, err = PolicyFromFile(dir, def) // a directory
	assert.Equal(t, def, p)
	require.Error(t, err)
}
