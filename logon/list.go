package logon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/agentlock/agentlock/internal/recheck"
)

// A Server is one entry of a List.
type Server struct {
	// Name identifies the server in errors and in a Validation's result.
	// Use what the code running under the lease needs to reach the server,
	// such as its share path or base URL. Names in a List are unique and
	// not empty.
	Name string
	// Check tells whether the server is usable.
	Check Check
}

// Strategy says how a List tries its servers.
type Strategy int

const (
	// Failover tries the servers one after another, in list order, and
	// stops at the first that passes. Earlier servers are preferred; a
	// dead one costs at most its check timeout.
	Failover Strategy = iota
	// FirstToAnswer checks all servers at once and takes the first that
	// passes, canceling the others. It is the fastest answer when any
	// server will do.
	FirstToAnswer
)

func (s Strategy) String() string {
	switch s {
	case Failover:
		return "Failover"
	case FirstToAnswer:
		return "FirstToAnswer"
	}
	return fmt.Sprintf("logon.Strategy(%d)", int(s))
}

// Defaults of a List; see WithSuccessTTL and WithFailureTTL.
const (
	DefaultSuccessTTL = 10 * time.Second
	DefaultFailureTTL = 5 * time.Second
)

// A ListOption configures a List. An invalid value is a *ConfigError from
// NewList.
type ListOption struct {
	name  string
	apply func(*listConfig) error
}

type listConfig struct {
	strategy     Strategy
	checkTimeout time.Duration
	successTTL   time.Duration
	failureTTL   time.Duration
}

// WithStrategy sets how the servers are tried; the default is Failover.
func WithStrategy(s Strategy) ListOption {
	return ListOption{"WithStrategy", func(c *listConfig) error {
		if s != Failover && s != FirstToAnswer {
			return fmt.Errorf("unknown strategy %v", s)
		}
		c.strategy = s
		return nil
	}}
}

// WithCheckTimeout bounds each server's check to d, in addition to the
// check's own timeout (the shorter wins) and the caller's context. It
// keeps a dead first server from using up the whole deadline under
// Failover. d must be positive; by default there is no bound beyond the
// checks' own.
func WithCheckTimeout(d time.Duration) ListOption {
	return ListOption{"WithCheckTimeout", func(c *listConfig) error {
		if d <= 0 {
			return fmt.Errorf("non-positive timeout %v", d)
		}
		c.checkTimeout = d
		return nil
	}}
}

// WithSuccessTTL sets how long a passing result is reused before the
// servers are probed again; the default is DefaultSuccessTTL. 0 disables
// caching of successes; d < 0 is an error.
func WithSuccessTTL(d time.Duration) ListOption {
	return ListOption{"WithSuccessTTL", func(c *listConfig) error {
		if d < 0 {
			return fmt.Errorf("negative TTL %v", d)
		}
		c.successTTL = d
		return nil
	}}
}

// WithFailureTTL sets how long a failing result is reused before the
// servers are probed again; the default is DefaultFailureTTL. It is
// separate from WithSuccessTTL because a failure is usually worth
// re-probing sooner, or, for a poller that would otherwise retry a dead
// network every few seconds, later. 0 disables caching of failures; d < 0
// is an error.
func WithFailureTTL(d time.Duration) ListOption {
	return ListOption{"WithFailureTTL", func(c *listConfig) error {
		if d < 0 {
			return fmt.Errorf("negative TTL %v", d)
		}
		c.failureTTL = d
		return nil
	}}
}

// A List validates a set of logon servers: it finds one that passes its
// check, by Failover or FirstToAnswer, and caches the outcome. A List is
// safe for concurrent use; concurrent calls made while a probe is running
// share that probe instead of starting their own.
type List struct {
	servers []Server
	cfg     listConfig
	now     func() time.Time // time.Now; replaced by tests

	mu     sync.Mutex
	cached *result // last cacheable outcome, or nil
	call   *probe  // the probe in progress, or nil
}

// result is the outcome of one probe of the list.
type result struct {
	index int       // the server that passed; -1 when err != nil
	err   error     // an *AllFailedError
	at    time.Time // when the probe ended
}

// probe is one run over the list, shared by every caller waiting on it.
type probe struct {
	done    chan struct{} // closed when res is set
	res     result
	waiters int                // callers waiting on done
	cancel  context.CancelFunc // ends the probe early
}

// NewList returns a List of servers, tried in the order given. It returns
// a *ConfigError when servers is empty, a server has no Name or no Check,
// two servers share a Name, or an option is invalid.
func NewList(servers []Server, opts ...ListOption) (*List, error) {
	if len(servers) == 0 {
		return nil, &ConfigError{Func: "NewList", Option: "servers", Err: errors.New("no servers")}
	}
	seen := make(map[string]bool, len(servers))
	for i, s := range servers {
		switch {
		case s.Name == "":
			return nil, &ConfigError{Func: "NewList", Option: "servers", Err: fmt.Errorf("server %d has no Name", i)}
		case s.Check == nil:
			return nil, &ConfigError{Func: "NewList", Option: "servers", Err: fmt.Errorf("server %q has no Check", s.Name)}
		case seen[s.Name]:
			return nil, &ConfigError{Func: "NewList", Option: "servers", Err: fmt.Errorf("duplicate server %q", s.Name)}
		}
		seen[s.Name] = true
	}
	l := &List{
		servers: append([]Server(nil), servers...),
		cfg:     listConfig{successTTL: DefaultSuccessTTL, failureTTL: DefaultFailureTTL},
		now:     time.Now,
	}
	for i, o := range opts {
		if o.apply == nil {
			return nil, &ConfigError{Func: "NewList", Option: fmt.Sprintf("option %d", i), Err: errors.New("zero ListOption value")}
		}
		if err := o.apply(&l.cfg); err != nil {
			return nil, &ConfigError{Func: "NewList", Option: o.name, Err: err}
		}
	}
	return l, nil
}

// Check reports whether some server in the list is usable: it returns nil
// if one is, and otherwise an *AllFailedError or, when ctx ends first, an
// error wrapping ctx.Err(). It does not say which server passed; use a
// Validation for that.
func (l *List) Check(ctx context.Context) error {
	_, err := l.validate(ctx)
	return err
}

// Validation returns a new Validation of l. Make one per use, such as per
// lock acquisition, so that each use sees the server its own check chose.
func (l *List) Validation() *Validation {
	return &Validation{l: l}
}

// validate returns the outcome of a fresh cached probe, or joins or starts
// a probe.
func (l *List) validate(ctx context.Context) (result, error) {
	if err := ctx.Err(); err != nil {
		return result{index: -1}, fmt.Errorf("logon: validation not started: %w", err)
	}
	l.mu.Lock()
	if r := l.cached; r != nil {
		ttl := l.cfg.failureTTL
		if r.err == nil {
			ttl = l.cfg.successTTL
		}
		if l.now().Sub(r.at) < ttl {
			l.mu.Unlock()
			return *r, r.err
		}
		l.cached = nil
	}
	p := l.call
	if p == nil {
		// The probe must not die with the caller that happened to start
		// it while others wait on it, so it keeps ctx's values but
		// neither its cancellation nor its deadline (a caller with more
		// time than the first must not get the first's timeout); each
		// waiter gives up at its own deadline, and the probe is canceled
		// when the last waiter leaves. Per-check timeouts still apply.
		pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		p = &probe{done: make(chan struct{}), cancel: cancel}
		l.call = p
		go l.run(pctx, p)
	}
	p.waiters++
	l.mu.Unlock()

	select {
	case <-p.done:
		return p.res, p.res.err
	case <-ctx.Done():
		l.mu.Lock()
		p.waiters--
		if p.waiters == 0 && l.call == p {
			// Nobody wants this probe any more: stop it, and let the
			// next caller start afresh rather than join a dying probe.
			p.cancel()
			l.call = nil
		}
		l.mu.Unlock()
		return result{index: -1}, fmt.Errorf("logon: validation abandoned: %w", ctx.Err())
	}
}

// forget drops a cached success of the server called name, which has
// just failed a direct check.
func (l *List) forget(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.cached; r != nil && r.err == nil && l.servers[r.index].Name == name {
		l.cached = nil
	}
}

// run probes the list and publishes the outcome to p's waiters and, unless
// the probe was cut short by its context, to the cache.
func (l *List) run(ctx context.Context, p *probe) {
	defer p.cancel()
	var r result
	if l.cfg.strategy == FirstToAnswer {
		r = l.race(ctx)
	} else {
		r = l.failover(ctx)
	}
	r.at = l.now()

	l.mu.Lock()
	p.res = r
	if l.call == p {
		l.call = nil
		// A failure caused by the callers' deadline or cancellation
		// says nothing about the servers, so it is not cached.
		ttl := l.cfg.failureTTL
		if r.err == nil {
			ttl = l.cfg.successTTL
		}
		if ctx.Err() == nil && ttl > 0 {
			l.cached = &r
		}
	}
	l.mu.Unlock()
	close(p.done)
}

func (l *List) failover(ctx context.Context) result {
	fails := make([]Failure, 0, len(l.servers))
	for i, s := range l.servers {
		if ctx.Err() != nil {
			ce := contextError(s.Name, ctx, nil, 0)
			ce.detail = "not tried: " + ce.detail
			fails = append(fails, Failure{Name: s.Name, Err: ce})
			continue
		}
		err := l.checkOne(ctx, s)
		if err == nil {
			return result{index: i}
		}
		fails = append(fails, Failure{Name: s.Name, Err: err})
	}
	return result{index: -1, err: &AllFailedError{Failures: fails}}
}

func (l *List) race(ctx context.Context) result {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // cancels the losers once there is a winner
	type answer struct {
		index int
		err   error
	}
	// Buffered so that losers still running when race returns can
	// deliver their answer and exit without anyone receiving it.
	answers := make(chan answer, len(l.servers))
	for i, s := range l.servers {
		go func() { answers <- answer{i, l.checkOne(ctx, s)} }()
	}
	fails := make([]Failure, len(l.servers))
	for range l.servers {
		a := <-answers
		if a.err == nil {
			return result{index: a.index}
		}
		fails[a.index] = Failure{Name: l.servers[a.index].Name, Err: a.err}
	}
	return result{index: -1, err: &AllFailedError{Failures: fails}}
}

// checkOne runs one server's check under the list's per-check timeout and
// makes sure a failure is a *CheckError.
func (l *List) checkOne(ctx context.Context, s Server) (err error) {
	// The check runs on the List's goroutine, where a panic would take
	// the whole program down (the caller's recover cannot see it).
	defer func() {
		if r := recover(); r != nil {
			err = &CheckError{Server: s.Name, Kind: KindOther, Err: fmt.Errorf("check panicked: %v", r)}
		}
	}()
	cctx, cancel := ctx, context.CancelFunc(func() {})
	if l.cfg.checkTimeout > 0 {
		cctx, cancel = context.WithTimeout(ctx, l.cfg.checkTimeout)
	}
	defer cancel()
	err = s.Check(cctx)
	if err == nil {
		return nil
	}
	return classify(s.Name, ctx, cctx, l.cfg.checkTimeout, err)
}

// A Validation is one use of a List's check that remembers which server it
// validated, so that the code that runs afterwards, such as an installer
// holding the lock, uses the server that was actually checked rather than
// one chosen separately. Its Check method is the precondition:
//
//	v := list.Validation()
//	lease, err := c.Acquire(ctx, lock.WithPrecondition(v.Check))
//	...
//	srv, _ := v.Server() // read the instructions from srv
//
// A Validation is safe for concurrent use, but a shared one reports
// whichever call finished last; make one per use.
//
// Check validates the whole List (through its cache, as List.Check
// does) every time, except for the re-check that lock.WithRecheck makes
// right after the lock is taken: that one probes the server this
// Validation validated before locking, directly and bypassing the
// cache, since it must ask the server rather than the cache and must
// not hold the lock while other servers are tried. (The lock package
// marks the context of that re-check; no other call is a re-check.) So
// a Validation reused for a second acquisition, for example one given
// to lock.New, still fails over: if the server it chose has died, the
// next acquisition tries the list again. If a re-check fails, the List
// also forgets a cached success of that server, so that the next
// acquisition probes the servers instead of trusting the cache.
type Validation struct {
	l *List

	mu  sync.Mutex
	srv Server
	at  time.Time
	ok  bool
}

// Check validates the List as List.Check does and records the outcome: on
// success the server that passed, on failure that there is none. As the
// re-check of lock.WithRecheck, it probes the validated server directly
// instead (see Validation).
func (v *Validation) Check(ctx context.Context) error {
	v.mu.Lock()
	srv, again := v.srv, v.ok && recheck.Is(ctx)
	v.mu.Unlock()
	if again {
		err := v.l.checkOne(ctx, srv)
		v.mu.Lock()
		defer v.mu.Unlock()
		if err != nil {
			v.srv, v.at, v.ok = Server{}, time.Time{}, false
			v.l.forget(srv.Name)
			return &AllFailedError{Failures: []Failure{{Name: srv.Name, Err: err}}}
		}
		v.at = v.l.now()
		return nil
	}
	r, err := v.l.validate(ctx)
	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil {
		v.srv, v.at, v.ok = Server{}, time.Time{}, false
		return err
	}
	v.srv, v.at, v.ok = v.l.servers[r.index], r.at, true
	return nil
}

// Server returns the server the last call of Check validated, and true; or
// the zero Server and false when Check has not been called or last failed.
func (v *Validation) Server() (Server, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.srv, v.ok
}

// ValidatedAt returns when the server returned by Server was found usable:
// the end of the probe, which for a cached result is earlier than the call
// of Check. It is the zero time when Server reports false.
func (v *Validation) ValidatedAt() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.at
}
