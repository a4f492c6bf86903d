package etcdlock

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/agentlock/agentlock/lock"
)

// keys returns the queue prefix and the state key of the lock name.
// The queue prefix is PREFIX NAME "/", the prefix that
// concurrency.NewMutex(session, PREFIX+NAME) queues under (what
// `etcdctl lock PREFIX+NAME` runs), so that agentlock and etcd's own
// lock exclude each other. Nothing but holders and waiters may live
// there: the state key, which outlives sessions, is PREFIX NAME
// itself, which is under no lock's queue prefix since names have no
// "/".
func (b *Backend) keys(name string) (queue, state string) {
	return b.prefix + name + "/", b.prefix + name
}

// queueKey returns the name of a new queue key of lease under queue:
// the lease id and a per-Backend sequence number, so that it is never
// reused (etcd issue 22082), and never equal to a Mutex's key, which is
// the lease id alone.
func (b *Backend) queueKey(queue string, lease clientv3.LeaseID) string {
	return fmt.Sprintf("%s%016x-%x", queue, int64(lease), b.seq.Add(1))
}

// fenceKey returns the fence of the queue key key: PREFIX NAME "!" and
// the queue key's base name, under no queue prefix (names have neither
// "!" nor "/"). The transaction that joins the queue writes key only if
// its fence does not exist. When that transaction gets no answer (a
// timeout, a lost connection), it may still be applied later, after
// the cleanup that removed key: so the cleanup writes the fence too,
// with the session lease, and the late join then does nothing. Without
// it, the key would hold the lock for as long as the session lives.
func fenceKey(state, key string) string {
	return state + "!" + strings.TrimPrefix(key, state+"/")
}

// ours reports whether kv, a key of the queue, is an agentlock queue
// key: its name is a lease id in 16 hex digits, "-" and a hex number,
// and that lease is the key's. Anything else (a concurrency.Mutex's
// key, a key written by hand) is a foreign holder.
func ours(queue string, kv *mvccpb.KeyValue) bool {
	base, ok := strings.CutPrefix(string(kv.Key), queue)
	if !ok {
		return false
	}
	id, seq, ok := strings.Cut(base, "-")
	if !ok || len(id) != 16 {
		return false
	}
	lease, err := strconv.ParseUint(id, 16, 64)
	if err != nil || int64(lease) != kv.Lease {
		return false
	}
	_, err = strconv.ParseUint(seq, 16, 64)
	return err == nil
}

// holderOf returns the holder that the queue key kv stands for: the
// record of an agentlock key, or a foreign holder.
func holderOf(queue string, kv *mvccpb.KeyValue) (lock.Holder, error) {
	if !ours(queue, kv) {
		return foreignHolder(kv), nil
	}
	h, err := decodeRecord(kv.Value, kv.CreateRevision)
	if err != nil {
		return lock.Holder{}, fmt.Errorf("key %s: %w", kv.Key, err)
	}
	return h, nil
}

// foreignHolder describes a holder that is not agentlock: it has no
// record, so only its token (the key's create revision) is known, and
// the purpose names the key and its lease for the operator.
func foreignHolder(kv *mvccpb.KeyValue) lock.Holder {
	return lock.Holder{
		Foreign: true,
		Token:   uint64(kv.CreateRevision),
		Purpose: foreignPurpose(kv),
	}
}

func foreignPurpose(kv *mvccpb.KeyValue) string {
	if kv.Lease == 0 {
		return fmt.Sprintf("foreign etcd key %s (no lease: it stays until deleted)", kv.Key)
	}
	return fmt.Sprintf("foreign etcd key %s (lease %x)", kv.Key, kv.Lease)
}

// busy returns TryAcquire's error for a lock held by kv (nil if the
// holder is not known).
func busy(name, queue string, kv *mvccpb.KeyValue) error {
	be := &lock.BusyError{Name: name}
	if kv == nil {
		return be
	}
	h, err := holderOf(queue, kv)
	if err == nil {
		be.Holder = h
	}
	if h.Foreign {
		// BusyError says nothing of a holder without a pid.
		return fmt.Errorf("%w: held by %s, created at revision %d", be, h.Purpose, kv.CreateRevision)
	}
	return be
}

// foreignAbandoned reports whether the foreign key kv, the last holder
// before this acquisition, was deleted because its session ended (its
// lease is gone) rather than unlocked (concurrency.Mutex.Unlock deletes
// the key and keeps the session). A holder that unlocks and then ends
// its session at once may be counted as abandoned; when etcd cannot
// tell, it is counted as abandoned.
func (b *Backend) foreignAbandoned(ctx context.Context, kv *mvccpb.KeyValue) bool {
	if kv.Lease == 0 {
		return false // deleted by hand: nothing expired
	}
	resp, err := b.client.TimeToLive(ctx, clientv3.LeaseID(kv.Lease))
	return err != nil || resp.TTL <= 0
}
