package etcdlock

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/agentlock/agentlock/lock"
)

// Sentinel errors, checked with errors.Is.
var (
	// ErrLost reports that a lease's lock was lost while it was held:
	// its queue key is gone, because its session expired or was revoked,
	// or because someone else deleted it. Release and SetPurpose return
	// it. Lease.Lost follows only the session: it is closed by then if
	// the session ended, but not if only the key was deleted.
	ErrLost = errors.New("etcdlock: lock lost")

	// ErrClosed reports use of a Backend after Close.
	ErrClosed = errors.New("etcdlock: backend closed")
)

// Defaults of the options.
const (
	DefaultPrefix    = "agentlock/"
	DefaultTTL       = 10 * time.Second
	DefaultOpTimeout = 5 * time.Second
)

// A Backend provides locks kept in an etcd cluster (see the package
// documentation). Create it with New and hand it to lock.New with
// lock.WithBackend. It is safe for concurrent use, and one Backend can
// serve any number of Coordinators and lock names.
type Backend struct {
	client    *clientv3.Client
	prefix    string
	ttl       int // seconds
	opTimeout time.Duration

	ctx    context.Context // of the sessions' keep-alives; ended by Close
	cancel context.CancelFunc
	seq    atomic.Uint64
	wg     sync.WaitGroup // background cleanups

	mu     sync.Mutex
	sess   *session // nil until the first acquisition
	closed bool
}

// An Option configures New.
type Option struct {
	name  string
	apply func(*Backend) error
}

// WithPrefix sets the prefix of every key the backend reads or writes
// (default DefaultPrefix, "agentlock/"). Processes that should contend
// for the same locks must use the same prefix. It must end in "/", so
// that the keys of two prefixes never mix ("agentlock/site" with the lock
// "1x" would otherwise be "agentlock/site1" with the lock "x").
func WithPrefix(prefix string) Option {
	return Option{name: "WithPrefix", apply: func(b *Backend) error {
		if !strings.HasSuffix(prefix, "/") {
			return fmt.Errorf("prefix %q does not end in \"/\"", prefix)
		}
		b.prefix = prefix
		return nil
	}}
}

// WithTTL sets the time-to-live of the backend's session lease
// (default DefaultTTL, 10s), in whole seconds, at least one. It bounds
// how long a lock stays held after its holder's process dies or is cut
// off from the cluster, and how soon Lease.Lost fires when the session
// cannot be kept alive. The cluster may raise it to its own minimum
// (a few election timeouts).
func WithTTL(ttl time.Duration) Option {
	return Option{name: "WithTTL", apply: func(b *Backend) error {
		if ttl < time.Second || ttl%time.Second != 0 {
			return fmt.Errorf("TTL %v is not a whole number of seconds >= 1s", ttl)
		}
		b.ttl = int(ttl / time.Second)
		return nil
	}}
}

// WithOpTimeout bounds the calls that have no caller's context:
// Release, SetPurpose and Close each return within it in total, and
// each attempt of a background cleanup is bounded by it (default
// DefaultOpTimeout, 5s).
func WithOpTimeout(d time.Duration) Option {
	return Option{name: "WithOpTimeout", apply: func(b *Backend) error {
		if d <= 0 {
			return fmt.Errorf("timeout %v is not positive", d)
		}
		b.opTimeout = d
		return nil
	}}
}

// New returns a backend that keeps its locks in the etcd cluster that
// client talks to. New itself does not contact the cluster: the session
// lease is granted by the first acquisition, Acquire or TryAcquire, even
// a TryAcquire that finds the lock held, and is kept alive until Close.
// An invalid option is an error
// matching lock.ErrInvalidOption.
//
// The caller keeps ownership of client: Close the Backend before
// closing the client.
func New(client *clientv3.Client, opts ...Option) (*Backend, error) {
	if client == nil {
		return nil, fmt.Errorf("etcdlock: %w: nil client", lock.ErrInvalidOption)
	}
	b := &Backend{
		client:    client,
		prefix:    DefaultPrefix,
		ttl:       int(DefaultTTL / time.Second),
		opTimeout: DefaultOpTimeout,
	}
	for _, o := range opts {
		if o.apply == nil {
			return nil, fmt.Errorf("etcdlock: %w: zero Option", lock.ErrInvalidOption)
		}
		if err := o.apply(b); err != nil {
			return nil, fmt.Errorf("etcdlock: %w: %s: %v", lock.ErrInvalidOption, o.name, err)
		}
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b, nil
}

// Close ends the backend's session and revokes its lease: every lock
// still held through b is lost (its Lease.Lost closes) and becomes
// free at once, and every queue key of b is removed. Acquisitions
// after Close fail with ErrClosed. Close does not close the client.
//
// Close returns within WithOpTimeout, and stops the background
// cleanups: if etcd cannot be reached, the lease expires after its TTL
// instead, and the keys with it.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	s := b.sess
	b.sess = nil
	b.mu.Unlock()
	var err error
	if s != nil {
		s.Orphan()
		ctx, cancel := context.WithTimeout(context.Background(), b.opTimeout)
		_, err = b.client.Revoke(ctx, s.Lease())
		cancel()
		if err != nil {
			err = fmt.Errorf("etcdlock: Close: revoking the session lease: %w", err)
		}
	}
	b.cancel()
	b.wg.Wait()
	return err
}

// session returns the backend's live session, granting a new lease if
// there is none (the first time, or after the last one expired).
func (b *Backend) session(ctx context.Context) (*session, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	if s := b.sess; s != nil {
		select {
		case <-s.Done():
			b.sess = nil
		default:
			b.mu.Unlock()
			return s, nil
		}
	}
	b.mu.Unlock()

	// Grant with the caller's context (cancellable); keep alive with
	// the backend's.
	sent := time.Now()
	resp, err := b.client.Grant(ctx, int64(b.ttl))
	if err != nil {
		return nil, err
	}
	cs, err := concurrency.NewSession(b.client, concurrency.WithLease(resp.ID),
		concurrency.WithTTL(b.ttl), concurrency.WithContext(b.ctx))
	if err != nil {
		b.revokeLater(resp.ID)
		return nil, err
	}
	s := &session{Session: cs, lost: make(chan struct{})}
	b.wg.Add(1)
	go b.monitor(s, sent, resp.TTL)
	b.mu.Lock()
	cur := b.sess
	closed := b.closed
	if !closed && cur == nil {
		b.sess = s
		b.mu.Unlock()
		return s, nil
	}
	b.mu.Unlock()
	// Closed meanwhile, or another goroutine was quicker: drop ours.
	s.Orphan()
	b.revokeLater(s.Lease())
	if closed {
		return nil, ErrClosed
	}
	return cur, nil
}

// A session is an etcd session whose Done channel is closed at the
// earlier of the end of the etcd session and a cautious local deadline
// (see monitor).
type session struct {
	*concurrency.Session
	lost chan struct{}
}

// Done returns a channel closed when s can no longer be trusted to hold
// its lease: the etcd session ended, or the local deadline passed.
func (s *session) Done() <-chan struct{} { return s.lost }

// margin is how long before the earliest moment the server may expire
// a lease of the given TTL the local deadline fires: it covers
// differences of clock rate and the time between a deadline and the
// moment Lost is looked at.
func margin(ttl time.Duration) time.Duration { return max(ttl/10, 500*time.Millisecond) }

// monitor closes s.lost at the earlier of the end of the etcd session
// and the local deadline: the time the last answered request that
// renewed the lease (the grant, then keep-alives that monitor sends
// itself) was SENT, plus the TTL in its answer, minus margin. The
// server renews the lease when it receives a request, after it was
// sent, so its expiry is never before that time plus the TTL: Lost
// closes before the server can expire the lease (barring clocks that
// drift apart by more than the margin), not after as a deadline counted
// from the arrival of answers would. When the deadline passes first,
// monitor stops keeping the lease alive and revokes it, so that the
// lock is not held on by a session the backend has given up.
func (b *Backend) monitor(s *session, sent time.Time, ttlSec int64) {
	defer b.wg.Done()
	ttl := time.Duration(ttlSec) * time.Second
	m := margin(ttl)
	deadline := sent.Add(ttl - m)
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	period := max((ttl-m)/3, 10*time.Millisecond)
	tick := time.NewTicker(period)
	defer tick.Stop()

	results := make(chan keepAliveResult, 1)
	kctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	inflight := false
	for {
		select {
		case <-s.Session.Done():
			close(s.lost)
			return
		case <-timer.C:
			close(s.lost)
			b.invalidate(s)
			b.revokeLater(s.Lease())
			return
		case <-tick.C:
			if inflight {
				continue
			}
			inflight = true
			b.wg.Add(1) // while monitor's own count is held
			go b.keepAlive(kctx, s, deadline, results)
		case r := <-results:
			inflight = false
			switch {
			case r.err == nil && r.ttl > 0:
				ttl := time.Duration(r.ttl) * time.Second
				if d := r.sent.Add(ttl - margin(ttl)); d.After(deadline) {
					deadline = d
					timer.Reset(time.Until(deadline))
				}
			case r.err == nil, errors.Is(r.err, rpctypes.ErrLeaseNotFound):
				// The lease is gone: the session sees it soon, but
				// Lost need not wait.
				timer.Reset(0)
			}
		}
	}
}

// A keepAliveResult is the answer to one keep-alive request.
type keepAliveResult struct {
	sent time.Time // when the request was sent
	ttl  int64     // seconds, from the answer
	err  error
}

// keepAlive renews s's lease once, giving up at deadline, and sends
// the outcome on results. It runs on its own goroutine, counted in b.wg.
func (b *Backend) keepAlive(ctx context.Context, s *session, deadline time.Time, results chan<- keepAliveResult) {
	defer b.wg.Done()
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	r := keepAliveResult{sent: time.Now()}
	if testDropKeepAlives.Load() {
		<-ctx.Done() // the request is lost
	}
	resp, err := b.client.KeepAliveOnce(ctx, s.Lease())
	if err == nil {
		r.ttl = resp.TTL
	}
	r.err = err
	results <- r
}

// invalidate forgets s after etcd said its lease is gone.
func (b *Backend) invalidate(s *session) {
	b.mu.Lock()
	if b.sess == s {
		b.sess = nil
	}
	b.mu.Unlock()
	s.Orphan()
}

func (b *Backend) revokeLater(id clientv3.LeaseID) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		ctx, cancel := context.WithTimeout(b.ctx, b.opTimeout)
		defer cancel()
		b.client.Revoke(ctx, id) // if it fails, the lease expires
	}()
}

// Acquire implements lock.Backend.
func (b *Backend) Acquire(ctx context.Context, req lock.Request) (lock.Grant, error) {
	queue, state := b.keys(req.Name)
	op := "Acquire"
	if !req.Wait {
		op = "TryAcquire"
	}
	for {
		s, err := b.session(ctx)
		if err != nil {
			return nil, b.wrap(ctx, req.Name, op, err)
		}
		g, retry, err := b.attempt(ctx, s, req, queue, state)
		if retry && ctx.Err() == nil {
			continue
		}
		if err != nil {
			var be *lock.BusyError
			if errors.As(err, &be) {
				return nil, err
			}
			return nil, b.wrap(ctx, req.Name, op, err)
		}
		return g, nil
	}
}

// wrap prefixes err, and makes it ctx.Err() when ctx is done (whatever
// gRPC made of the cancellation).
func (b *Backend) wrap(ctx context.Context, name, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		err = cerr
	}
	return fmt.Errorf("etcdlock %s: %s: %w", name, op, err)
}

// attempt makes one acquisition on session s. retry says the session
// was lost on the way and the caller should start over with a new one.
func (b *Backend) attempt(ctx context.Context, s *session, req lock.Request, queue, state string) (g *grant, retry bool, err error) {
	key := b.queueKey(queue, s.Lease())
	h := req.Holder
	h.Since = time.Now()

	unfenced, join := joinTxn(queue, state, key, s.Lease(), encodeRecord(h), req.Wait)
	out, err := b.client.Txn(ctx).If(unfenced...).Then(join).Commit()
	if err != nil {
		// The transaction may have been applied all the same: fence it.
		return b.abort(s, key, state, true, err)
	}
	if !out.Succeeded { // a new key cannot be fenced
		return nil, false, fmt.Errorf("queue key %s fenced before it was written", key)
	}
	resp := out.Responses[0].GetResponseTxn()
	rev := out.Header.Revision // our key's create revision, if we wrote it
	if resp.Succeeded {
		h.Token = uint64(rev)
		return b.granted(req.Name, s, key, state, rev, h, resp.Responses[1].GetResponseRange().Kvs, false)
	}
	var pred *mvccpb.KeyValue // the holder (TryAcquire), or the key to wait for
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		pred = kvs[0]
	}
	if !req.Wait {
		return nil, false, busy(req.Name, queue, pred)
	}
	return b.awaitTurn(ctx, s, req.Name, queue, state, key, rev, pred, h)
}

// awaitTurn waits until key, created at revision rev behind pred, is
// at the head of the queue, and then takes the lock for h.
func (b *Backend) awaitTurn(ctx context.Context, s *session, name, queue, state, key string, rev int64, pred *mvccpb.KeyValue, h lock.Holder) (*grant, bool, error) {
	last, err := b.waitTurn(ctx, s, queue, rev, pred, rev)
	if err != nil {
		return b.abort(s, key, state, false, err)
	}
	// The state key records only agentlock holders: if the holder
	// before us was foreign, whether it unlocked is told by its lease.
	foreignLost := last != nil && !ours(queue, last) && b.foreignAbandoned(ctx, last)

	// Our turn. Check that our key is still ours (etcd issue 11456:
	// the wait can end because our own lease expired and took our key
	// with it, and a lock must not be granted on a dead session), and
	// mark the lock held by us in the same transaction.
	h.Since = time.Now()
	mine := clientv3.Compare(clientv3.CreateRevision(key), "=", rev)
	mark, err := b.client.Txn(ctx).If(mine).Then(
		clientv3.OpGet(state),
		clientv3.OpPut(state, stateHeld+key),
		clientv3.OpPut(key, encodeRecord(h), clientv3.WithLease(s.Lease())),
	).Commit()
	if err != nil {
		return b.abort(s, key, state, false, err)
	}
	if !mark.Succeeded {
		return nil, true, fmt.Errorf("%w while waiting", ErrLost)
	}
	h.Token = uint64(rev)
	return b.granted(name, s, key, state, rev, h, mark.Responses[0].GetResponseRange().Kvs, foreignLost)
}

// abort removes key after a step of an acquisition failed with err
// (see cleanup), and says whether to retry on a new session: the
// session ended, or etcd says its lease is gone.
func (b *Backend) abort(s *session, key, state string, fence bool, err error) (*grant, bool, error) {
	b.cleanup(s, key, state, fence)
	switch {
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		b.invalidate(s)
		return nil, true, err
	case errors.Is(err, errSessionDone):
		return nil, true, err
	}
	return nil, false, err
}

// joinTxn returns the transaction that joins the queue with key, in
// one round trip when the lock is free: if the queue is empty, join it
// (and so take the lock), read the state key for Abandoned and mark the
// lock held by us. Otherwise TryAcquire (wait false) reads the holder
// and writes nothing, and Acquire joins the queue and reads the key it
// has to wait for: the newest one before ours. All of it is done only
// if the key was not fenced: if the join gets no answer, the cleanup
// fences the key as it removes it, so that the join, if it is applied
// later still, does nothing (see fenceKey).
func joinTxn(queue, state, key string, lease clientv3.LeaseID, record string, wait bool) ([]clientv3.Cmp, clientv3.Op) {
	free := clientv3.Compare(clientv3.CreateRevision(queue), "=", 0).WithPrefix()
	put := clientv3.OpPut(key, record, clientv3.WithLease(lease))
	then := []clientv3.Op{put, clientv3.OpGet(state), clientv3.OpPut(state, stateHeld+key)}
	var els []clientv3.Op
	if wait {
		els = []clientv3.Op{clientv3.OpGet(queue, clientv3.WithLastCreate()...), put}
	} else {
		els = []clientv3.Op{clientv3.OpGet(queue, clientv3.WithFirstCreate()...)}
	}
	unfenced := clientv3.Compare(clientv3.CreateRevision(fenceKey(state, key)), "=", 0)
	return []clientv3.Cmp{unfenced}, clientv3.OpTxn([]clientv3.Cmp{free}, then, els)
}

// testHookGranted, if set (by tests), is called after a transaction
// that grants a lock succeeded and before the session is checked.
var testHookGranted func(s *session)

// testDropKeepAlives, set by tests, makes the keep-alive requests of
// monitor go unanswered.
var testDropKeepAlives atomic.Bool

// granted returns the grant of a lock whose granting transaction just
// succeeded on session s, unless s ended meanwhile (etcd issue 11456
// again: the transaction can succeed just before the lease expires, or
// the session can end for another reason while its answer travels). A
// lock must not be granted on a dead session: the key is removed (see
// cleanup) and the caller starts over with a new one. foreignLost says
// the previous holder was foreign and lost its session.
func (b *Backend) granted(name string, s *session, key, state string, rev int64, h lock.Holder, prevState []*mvccpb.KeyValue, foreignLost bool) (*grant, bool, error) {
	if hook := testHookGranted; hook != nil {
		hook(s)
	}
	select {
	case <-s.Done():
		b.cleanup(s, key, state, false)
		return nil, true, fmt.Errorf("%w: the session ended as the lock was granted", ErrLost)
	default:
	}
	return b.newGrant(name, s, key, state, rev, h, prevState, foreignLost), false, nil
}

var errSessionDone = errors.New("session ended while waiting")

// waitTurn waits until no key of the queue was created before myRev.
// pred, if not nil, is the newest such key, as seen at revision rev.
// It returns the last key it waited for (nil if none): the holder
// before us, unless that one left while older keys were still there.
func (b *Backend) waitTurn(ctx context.Context, s *session, queue string, myRev int64, pred *mvccpb.KeyValue, rev int64) (last *mvccpb.KeyValue, err error) {
	for {
		if pred == nil {
			resp, err := b.client.Get(ctx, queue, append(clientv3.WithLastCreate(), clientv3.WithMaxCreateRev(myRev-1))...)
			if err != nil {
				return nil, err
			}
			if len(resp.Kvs) == 0 {
				return last, nil
			}
			pred, rev = resp.Kvs[0], resp.Header.Revision
		}
		if err := b.waitDelete(ctx, s, string(pred.Key), rev); err != nil {
			return nil, err
		}
		last, pred = pred, nil
	}
}

// waitDelete waits until key is deleted after revision rev. It returns
// nil also when the watch ends for another reason (compaction, a lost
// leader): the caller looks again.
func (b *Backend) waitDelete(ctx context.Context, s *session, key string, rev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	// Watch from rev+1: key existed at rev, so its deletion comes
	// later. A watch that starts after the store's current revision is
	// "synced" at once; one that starts at or before it waits for the
	// server's catch-up loop, which runs every 100ms.
	wch := b.client.Watch(wctx, key, clientv3.WithRev(rev+1), clientv3.WithFilterPut())
	for {
		select {
		case wr, ok := <-wch:
			if !ok || wr.Canceled || wr.Err() != nil {
				if err := ctx.Err(); err != nil {
					return err
				}
				select {
				case <-time.After(10 * time.Millisecond): // do not spin on a failing watch
				case <-ctx.Done():
					return ctx.Err()
				}
				return nil
			}
			for _, ev := range wr.Events {
				if ev.Type == mvccpb.DELETE {
					return nil
				}
			}
		case <-s.Done():
			return errSessionDone
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// cleanupGrace is how long a failed or cancelled acquisition waits for
// the removal of its queue key before it returns and leaves the removal
// to the background: long enough for a healthy cluster, short enough
// that a call whose context is done returns at once.
const cleanupGrace = 20 * time.Millisecond

// cleanup removes our queue key after a failed or cancelled
// acquisition, in the background (the caller's context may be done):
// see retryRemove. It waits for the removal at most cleanupGrace.
// fence says the transaction that wrote the key got no answer, so that
// it may still be applied: the removal then fences the key.
func (b *Backend) cleanup(s *session, key, state string, fence bool) {
	done := b.removeLater(s, key, state, fence)
	t := time.NewTimer(cleanupGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// removeLater starts retryRemove and returns a channel closed when it
// ends.
func (b *Backend) removeLater(s *session, key, state string, fence bool) <-chan struct{} {
	done := make(chan struct{})
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer close(done)
		b.retryRemove(s, key, state, fence)
	}()
	return done
}

// retryRemove removes key (and marks the lock released if it was
// marked held by key: the marking transaction may have been applied
// with its answer lost), trying again until it succeeds, the session
// ends (which removes the key with the lease) or the Backend is
// closed. A key left in the queue would otherwise hold the lock, or
// block everyone behind it, for as long as the session lives.
func (b *Backend) retryRemove(s *session, key, state string, fence bool) {
	delay := 50 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(b.ctx, b.opTimeout)
		err := b.remove(ctx, s, key, state, fence)
		cancel()
		if err == nil || errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return // (without the lease, the key is gone)
		}
		t := time.NewTimer(delay)
		select {
		case <-s.Done():
		case <-b.ctx.Done():
		case <-t.C:
			delay = min(2*delay, time.Second)
			continue
		}
		t.Stop()
		return
	}
}

// remove deletes key, marks the lock released if it was marked held by
// key, and with fence writes key's fence (see fenceKey).
func (b *Backend) remove(ctx context.Context, s *session, key, state string, fence bool) error {
	// Deleting key unconditionally is safe: queue keys are never
	// reused (lease id and a sequence number), so this key cannot be
	// a later acquisition's (etcd issue 22082).
	ops := []clientv3.Op{clientv3.OpDelete(key)}
	if fence {
		ops = append(ops, clientv3.OpPut(fenceKey(state, key), "", clientv3.WithLease(s.Lease())))
	}
	_, err := b.client.Txn(ctx).
		If(clientv3.Compare(clientv3.Value(state), "=", stateHeld+key)).
		Then(append(ops, clientv3.OpPut(state, stateReleased+key))...).
		Else(ops...).
		Commit()
	return err
}

func (b *Backend) newGrant(name string, s *session, key, state string, rev int64, h lock.Holder, prevState []*mvccpb.KeyValue, foreignLost bool) *grant {
	var prev []byte
	if len(prevState) > 0 {
		prev = prevState[0].Value
	}
	return &grant{b: b, name: name, s: s, key: key, state: state, rev: rev, h: h,
		abandoned: foreignLost || previousAbandoned(prev),
		setSem:    make(chan struct{}, 1)}
}

// Holder implements lock.Backend. It reads the queue key with the
// lowest create revision (the holder's) and never writes. A holder
// that is not agentlock (a concurrency.Mutex, `etcdctl lock`) is
// reported with Foreign set, its key's create revision as Token, and
// its key and lease in Purpose.
func (b *Backend) Holder(ctx context.Context, name string) (lock.Holder, error) {
	queue, _ := b.keys(name)
	resp, err := b.client.Get(ctx, queue, clientv3.WithFirstCreate()...)
	if err != nil {
		return lock.Holder{}, b.wrap(ctx, name, "Holder", err)
	}
	if len(resp.Kvs) == 0 {
		return lock.Holder{}, fmt.Errorf("etcdlock %s: %w", name, lock.ErrNotHeld)
	}
	h, err := holderOf(queue, resp.Kvs[0])
	if err != nil {
		return lock.Holder{}, fmt.Errorf("etcdlock %s: %w", name, err)
	}
	return h, nil
}

// Fenced returns the comparison that makes an etcd transaction
// conditional on l still holding its lock: l's queue key still exists
// with the create revision that is l's token. Use it in the If of
// every transaction that writes data the lock guards:
//
//	resp, err := client.Txn(ctx).If(b.Fenced(lease)).Then(clientv3.OpPut(k, v)).Commit()
//	// resp.Succeeded is false: the lock was lost (or released), nothing was written
//
// etcd evaluates it atomically with the writes, so a holder that was
// paused past its TTL, or cut off, cannot write after its successor
// took the lock, even if it does not know yet that it lost it. If l
// is nil, released, or not a lease of b, the comparison never holds.
// A lease that was lost but not released still gets the comparison of
// its key, which no longer holds once the key is gone (its session
// expired, or someone else deleted it).
func (b *Backend) Fenced(l *lock.Lease) clientv3.Cmp {
	if g := b.grantOf(l); g != nil {
		return clientv3.Compare(clientv3.CreateRevision(g.key), "=", g.rev)
	}
	// A create revision is never negative: this never holds.
	return clientv3.Compare(clientv3.CreateRevision(b.prefix), "<", 0)
}

// grantOf returns b's grant behind l, or nil if l is nil, released, or
// not a lease of b.
func (b *Backend) grantOf(l *lock.Lease) *grant {
	if l == nil {
		return nil
	}
	var mine *grant
	l.Raw(func(g lock.Grant) error { // an error only says l was released
		if g, ok := g.(*grant); ok && g.b == b {
			mine = g
		}
		return nil
	})
	return mine
}

// Put writes key=val in etcd only if l still holds its lock (see
// Fenced). If it does not, nothing is written and the error matches
// lock.ErrFenced.
func (b *Backend) Put(ctx context.Context, l *lock.Lease, key, val string, opts ...clientv3.OpOption) error {
	resp, err := b.client.Txn(ctx).If(b.Fenced(l)).Then(clientv3.OpPut(key, val, opts...)).Commit()
	if err != nil {
		return fmt.Errorf("etcdlock: put %s: %w", key, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("etcdlock: put %s: %w: the lease no longer holds the lock", key, lock.ErrFenced)
	}
	return nil
}

// A grant is one acquisition: the queue key at the head of the queue.
type grant struct {
	b         *Backend
	name      string
	s         *session
	key       string
	state     string
	rev       int64
	abandoned bool

	setSem chan struct{} // serializes SetPurpose, held across its RPC
	mu     sync.Mutex    // guards h, never held across an RPC
	h      lock.Holder
}

func (g *grant) Holder() lock.Holder {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.h
}

func (g *grant) Abandoned() bool { return g.abandoned }

func (g *grant) Lost() <-chan struct{} { return g.s.Done() }

// SetPurpose rewrites the record of the queue key if it still exists
// with its revision. It returns within WithOpTimeout, and with ErrLost
// at once if the session is known to be lost.
func (g *grant) SetPurpose(purpose string) error {
	if g.lost() {
		return fmt.Errorf("etcdlock %s: SetPurpose: %w", g.name, ErrLost)
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.b.opTimeout)
	defer cancel()
	select {
	case g.setSem <- struct{}{}:
		defer func() { <-g.setSem }()
	case <-ctx.Done():
		return fmt.Errorf("etcdlock %s: SetPurpose: %w (waiting for another SetPurpose)", g.name, ctx.Err())
	}
	h := g.Holder()
	h.Purpose = purpose
	resp, err := g.b.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(g.key), "=", g.rev)).
		Then(clientv3.OpPut(g.key, encodeRecord(h), clientv3.WithLease(g.s.Lease()))).
		Commit()
	if err != nil {
		return fmt.Errorf("etcdlock %s: SetPurpose: %w", g.name, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("etcdlock %s: SetPurpose: %w", g.name, ErrLost)
	}
	g.mu.Lock()
	g.h = h
	g.mu.Unlock()
	return nil
}

// lost reports whether g's session is known to be lost (Lost is
// closed): etcd deletes, or is about to delete, its key with the lease.
func (g *grant) lost() bool {
	select {
	case <-g.s.Done():
		return true
	default:
		return false
	}
}

// Release deletes the queue key and marks the lock released, in one
// transaction that compares the key's create revision, so a retried
// or late Release can never delete a later acquisition's key (etcd
// issue 22082). It returns an error matching ErrLost if the lock had
// been lost before, at once, without a round trip, if Lost is closed.
// It returns within WithOpTimeout: if etcd does not answer by then, it
// returns the error and the removal goes on in the background (see
// retryRemove).
func (g *grant) Release() error {
	b := g.b
	if g.lost() {
		return fmt.Errorf("etcdlock %s: Release: %w", g.name, ErrLost)
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.opTimeout)
	defer cancel()
	resp, err := b.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(g.key), "=", g.rev),
			clientv3.Compare(clientv3.Value(g.state), "=", stateHeld+g.key)).
		Then(clientv3.OpDelete(g.key), clientv3.OpPut(g.state, stateReleased+g.key)).
		Else(clientv3.OpDelete(g.key)).
		Commit()
	if err == nil {
		if !resp.Succeeded {
			return fmt.Errorf("etcdlock %s: Release: %w", g.name, ErrLost)
		}
		return nil
	}
	// The transaction may have been applied with its answer lost, so
	// a retry cannot tell a lost lock from our own deletion: it only
	// removes, within the same time budget, and then in the background.
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 500*time.Millisecond) {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			b.removeLater(g.s, g.key, g.state, false)
			if cerr := ctx.Err(); !errors.Is(err, cerr) {
				err = fmt.Errorf("%w (after: %v)", cerr, err)
			}
			return fmt.Errorf("etcdlock %s: Release: %w (retrying in the background)", g.name, err)
		}
		if err = b.remove(ctx, g.s, g.key, g.state, false); err == nil {
			return nil
		}
	}
}
