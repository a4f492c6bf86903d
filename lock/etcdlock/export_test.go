package etcdlock

import (
	"context"

	"github.com/agentlock/agentlock/lock"
)

// GrantOf returns the grant behind l, so that tests can call its
// methods as a buggy or retrying caller would.
func (b *Backend) GrantOf(l *lock.Lease) lock.Grant {
	return b.grantOf(l)
}

// OnGranted makes f run after every transaction that grants a lock
// succeeded, with a function that ends the session it was granted on,
// until the returned restore is called.
func OnGranted(f func(endSession func())) (restore func()) {
	testHookGranted = func(s *session) {
		f(func() {
			s.Orphan()
			<-s.Done()
		})
	}
	return func() { testHookGranted = nil }
}

// DropKeepAlives makes the keep-alive requests that the local deadline
// of Lost counts from go unanswered (the etcd session's own keep-alives
// still reach the server), until the returned restore is called.
func DropKeepAlives() (restore func()) {
	testDropKeepAlives.Store(true)
	return func() { testDropKeepAlives.Store(false) }
}

// LateJoin replays what happens when the transaction by which an
// Acquire joins the queue of name gets no answer and is applied only
// after the cleanup that removed its key: the cleanup, then the join.
func (b *Backend) LateJoin(ctx context.Context, name string) error {
	s, err := b.session(ctx)
	if err != nil {
		return err
	}
	queue, state := b.keys(name)
	key := b.queueKey(queue, s.Lease())
	if err := b.remove(ctx, s, key, state, true); err != nil {
		return err
	}
	unfenced, join := joinTxn(queue, state, key, s.Lease(), "{}", true)
	_, err = b.client.Txn(ctx).If(unfenced...).Then(join).Commit()
	return err
}
