package poll

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/agentlock/agentlock/lock"
)

// ErrInvalidOption reports an option value that New or AcquireNotify
// refuses.
var ErrInvalidOption = errors.New("poll: invalid option")

// Defaults.
const (
	DefaultInterval   = 5 * time.Second // time between cycles
	DefaultJitter     = 0.1             // intervals vary by ±10 %
	DefaultBackoffMax = time.Minute     // longest backoff after errors
)

// setting is one option: its name, for errors, and what it sets.
type setting struct {
	name  string
	apply func(*config) error
}

// An Option configures a Poller (in New) or AcquireNotify: WithInterval,
// WithJitter and WithLockOptions. Every Option is also a PollerOption.
// An invalid value is an error matching ErrInvalidOption, never ignored.
type Option struct{ s *setting }

// A PollerOption configures a Poller: an Option, or one of the options
// that only a Poller has (WithImmediateStart, WithBackoff, WithPolicy,
// OnBusy, OnError, OnFree). They are a type of their own so that giving
// one to AcquireNotify does not compile.
type PollerOption interface{ pollerSetting() *setting }

func (o Option) pollerSetting() *setting { return o.s }

type pollerOnly struct{ s *setting }

func (o pollerOnly) pollerSetting() *setting { return o.s }

type config struct {
	interval    time.Duration
	jitter      float64
	immediate   bool
	backoffBase time.Duration // 0: the interval
	backoffMax  time.Duration // 0: max(DefaultBackoffMax, base)
	policy      Policy
	onBusy      func(Event)
	onError     func(error)
	onFree      func()
	lockOpts    []lock.Option

	rnd func() float64 // in [0, 1); rand.Float64, replaced by tests
}

// WithInterval sets the time between cycles (and, in AcquireNotify,
// between looks at the holder while waiting). The default is
// DefaultInterval.
func WithInterval(d time.Duration) Option {
	return Option{&setting{"WithInterval", func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("interval %v is not positive", d)
		}
		c.interval = d
		return nil
	}}}
}

// WithJitter makes every wait vary at random by up to the fraction f of
// its length either way (0.1: ±10 %), so that pollers started together
// do not stay in step. f must be in [0, 1); 0 turns jitter off. The
// default is DefaultJitter. It applies to backoff delays too.
func WithJitter(f float64) Option {
	return Option{&setting{"WithJitter", func(c *config) error {
		if !(f >= 0 && f < 1) {
			return fmt.Errorf("jitter %v is not in [0, 1)", f)
		}
		c.jitter = f
		return nil
	}}}
}

// WithImmediateStart makes Run begin with a cycle at once instead of
// after one interval.
func WithImmediateStart() PollerOption {
	return pollerOnly{&setting{"WithImmediateStart", func(c *config) error {
		c.immediate = true
		return nil
	}}}
}

// WithBackoff sets the backoff after errors other than "busy": the
// first error waits base, each further error in a row twice as long as
// the one before, up to max (before jitter). A cycle that finds the
// lock free or busy ends the backoff. The default base is the interval
// and the default max is the larger of DefaultBackoffMax and base.
func WithBackoff(base, max time.Duration) PollerOption {
	return pollerOnly{&setting{"WithBackoff", func(c *config) error {
		if base <= 0 || max < base {
			return fmt.Errorf("backoff base %v, max %v: want 0 < base <= max", base, max)
		}
		c.backoffBase, c.backoffMax = base, max
		return nil
	}}}
}

// WithPolicy sets the notification policy. The default is
// DefaultPolicy().
func WithPolicy(p Policy) PollerOption {
	return pollerOnly{&setting{"WithPolicy", func(c *config) error {
		if p == nil {
			return errors.New("nil Policy")
		}
		c.policy = p
		return nil
	}}}
}

// OnBusy sets the function called with every busy event the policy lets
// through. Without it busy events are dropped.
func OnBusy(f func(Event)) PollerOption {
	return pollerOnly{&setting{"OnBusy", func(c *config) error {
		if f == nil {
			return errors.New("nil function")
		}
		c.onBusy = f
		return nil
	}}}
}

// OnError sets the function called with every error of a cycle other
// than "busy": a failed precondition, an I/O error of the lock, the
// error returned by the work function, a failed release. Without it
// such errors are dropped (and still cause backoff).
func OnError(f func(error)) PollerOption {
	return pollerOnly{&setting{"OnError", func(c *config) error {
		if f == nil {
			return errors.New("nil function")
		}
		c.onError = f
		return nil
	}}}
}

// OnFree sets the function called in every cycle that finds the lock
// free, before the work function if there is one. A watch-only Poller
// uses it to learn that the holder is gone (to clear a "please wait"
// message, say).
func OnFree(f func()) PollerOption {
	return pollerOnly{&setting{"OnFree", func(c *config) error {
		if f == nil {
			return errors.New("nil function")
		}
		c.onFree = f
		return nil
	}}}
}

// WithLockOptions sets options passed to every TryAcquire (and, in
// AcquireNotify, to Acquire), such as lock.WithPurpose("querying") for
// what the poller says while it holds the lock, or
// lock.WithPrecondition. The lock package checks them when they are
// used; one it refuses makes Run return that error.
func WithLockOptions(opts ...lock.Option) Option {
	opts = append([]lock.Option(nil), opts...)
	return Option{&setting{"WithLockOptions", func(c *config) error {
		c.lockOpts = append(c.lockOpts, opts...)
		return nil
	}}}
}

func newConfig(opts []PollerOption) (config, error) {
	c := config{
		interval: DefaultInterval,
		jitter:   DefaultJitter,
		rnd:      rand.Float64,
	}
	for i, opt := range opts {
		var o *setting
		if opt != nil {
			o = opt.pollerSetting()
		}
		if o == nil {
			return c, fmt.Errorf("%w: option %d is nil or zero", ErrInvalidOption, i)
		}
		if err := o.apply(&c); err != nil {
			return c, fmt.Errorf("%w: %s: %v", ErrInvalidOption, o.name, err)
		}
	}
	if c.backoffBase == 0 {
		c.backoffBase = c.interval
		c.backoffMax = max(DefaultBackoffMax, c.backoffBase)
	}
	if c.policy == nil {
		c.policy = DefaultPolicy()
	}
	return c, nil
}

// jittered returns d varied by the configured jitter.
func (c *config) jittered(d time.Duration) time.Duration {
	if c.jitter == 0 {
		return d
	}
	j := time.Duration(float64(d) * (1 + c.jitter*(2*c.rnd()-1)))
	return max(j, 1)
}

// backoff returns the wait after the n-th error in a row (n >= 1).
func (c *config) backoff(n int) time.Duration {
	d := c.backoffBase
	for i := 1; i < n && d < c.backoffMax; i++ {
		d *= 2
	}
	return c.jittered(min(d, c.backoffMax))
}
