// Package etcdlock is a lock.Backend that keeps agentlock's locks in an
// etcd cluster, for agents on many machines that must coordinate (at
// most one installer per site, a fleet-wide maintenance lock). It lives
// in a module of its own so that the core module does not depend on
// etcd.
//
//	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"https://etcd1:2379"}})
//	b, err := etcdlock.New(cli, etcdlock.WithTTL(10*time.Second))
//	defer b.Close()
//	c, err := lock.New("pcm-install", lock.WithBackend(b), lock.WithPurpose("querying"))
//	lease, err := c.Acquire(ctx)
//	...
//	err = b.Put(ctx, lease, "site/config", v) // written only while lease holds the lock
//
// Everything else is the lock package's API: Acquire, TryAcquire,
// Holder, Lease.Token, Lease.Abandoned, Lease.SetPurpose, Lease.Release.
// The lock is etcd's own recipe (client/v3/concurrency): a queue of keys
// with the Backend's session lease, where the key with the lowest create
// revision holds the lock; its known problems (etcd issues 11456 and
// 22082) are fixed. README.md in this module tells how.
//
// # What you can rely on
//
// One holder at a time, as etcd sees it. A token (Lease.Token) is the
// queue key's create revision, so tokens of a lock strictly increase.
// Holder never contends: it reads the lowest queue key and writes
// nothing, and TryAcquire on a held lock writes no key.
//
// Every call returns within its bound plus a few milliseconds, whatever
// the cluster does (unreachable, partitioned, without a leader):
// Acquire, TryAcquire, Holder and Put within their context's deadline;
// Release, SetPurpose and Close, which have no context, within
// WithOpTimeout. A cancelled or failed Acquire removes its queue key in
// the background, with a context of its own, and never holds the lock
// afterwards.
//
// A held lock can be lost: a holder paused or cut off for longer than
// the TTL loses its session lease, and the next waiter gets the lock.
// Lease.Lost closes before the lock can pass to someone else, as long
// as client and server clocks do not drift apart by more than
// max(TTL/10, 500ms) within a TTL; Release and SetPurpose then return
// ErrLost. But a paused process cannot look at Lost when it matters, so
// data the lock guards must be fenced where it is written: in etcd,
// with a transaction conditional on Fenced(lease), or with Put; in a
// guarded file (package guarded), by its tokens; elsewhere, by passing
// Lease.Token along and refusing lower tokens.
//
// Lease.Abandoned reports that the previous holder lost the lock
// without releasing it (its session expired or was revoked while it
// held the lock).
//
// `etcdctl lock PREFIX+NAME` and concurrency.NewMutex(session,
// PREFIX+NAME) queue under the same prefix as agentlock's lock NAME, by
// the same rule, so they exclude each other both ways. Such a holder is
// reported with lock.Holder.Foreign set, its key's create revision as
// Token, and its key and lease in Purpose.
//
// # Keys and records
//
// With the default prefix "agentlock/" the lock "pcm-install" uses:
//
//	agentlock/pcm-install                                             state: "held <queue key>" or "released <queue key>", no lease
//	agentlock/pcm-install/<lease id, 16 hex digits>-<sequence, hex>   queue keys, with the session lease
//	agentlock/pcm-install!<lease id>-<sequence>                       fences of joins whose answer was lost, with the session lease
//
// Only queue keys live under PREFIX NAME "/", the prefix that
// concurrency.Mutex queues under; a key there that is not of agentlock's
// form (lease id, "-", sequence, with that lease) is a foreign holder or
// waiter. The value of an agentlock queue key is the holder record, one
// JSON object:
//
//	{"v":1,"pid":4242,"host":"ws17","purpose":"installing Office 97",
//	 "since":"2025-01-02T03:04:05.123456789Z","start":123456,"boot":"<32 hex digits>"}
//
// v is the format version (1); pid, host and purpose are lock.Holder's;
// since is when the lock was taken (RFC 3339, nanoseconds, UTC); start
// and boot are lock.Holder's ProcessStart and BootID (omitted when
// unknown). The token is not stored: it is the key's create revision. A
// value that is not such an object is reported by Holder as an error
// matching lock.ErrCorrupt; it does not change who holds the lock. The
// record's pid is not checked for liveness: the holder may be on
// another machine, and its session lease is what proves it alive.
package etcdlock
