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
//
// Everything else is the lock package's API: Acquire, TryAcquire,
// Holder, Lease.Token, Lease.Abandoned, Lease.SetPurpose, Lease.Release.
// What differs is that a held lock can be lost (Lease.Lost), and that
// the guarded data must be fenced (Backend.Fenced, Backend.Put).
//
// # How it locks
//
// The algorithm is etcd's own lock recipe (client/v3/concurrency), on
// the same primitives, with its known problems fixed:
//
//   - A Backend keeps one session: an etcd lease kept alive in the
//     background, with a TTL (WithTTL, default 10s). It is granted by the
//     first acquisition and granted again after it expired.
//   - Every acquisition creates a queue key under PREFIX NAME "/" with
//     the session's lease. The key with the lowest create revision holds
//     the lock; the others wait, each watching the deletion of the key
//     created just before its own (no thundering herd). The queue key is
//     never reused: its name is the lease id and a per-Backend sequence
//     number. This is the prefix and the rule of etcd's
//     concurrency.Mutex, so `etcdctl lock PREFIX+NAME` (which runs
//     concurrency.NewMutex(session, PREFIX+NAME)) and agentlock exclude
//     each other (see "Sharing a lock with etcdctl lock").
//   - The token (Lease.Token) is the queue key's create revision: etcd's
//     cluster-wide revision, which strictly increases with every write,
//     so tokens of one lock strictly increase with every acquisition.
//   - Release deletes the key in a transaction that compares its create
//     revision, so a retried or late Release can never delete a later
//     acquisition's key (etcd issue 22082, where a key reused by the same
//     session was deleted by a retried unlock).
//   - A waiter whose turn comes re-checks, in the transaction that marks
//     the lock held, that its key still exists with its revision: the
//     wait can end because the waiter's own session expired and took the
//     key with it (etcd issue 11456, a lock granted on an expired
//     session). It then starts over with a new session. Any acquisition
//     whose granting transaction succeeded but whose session has ended
//     by the time the answer arrives also removes its key and starts
//     over.
//   - A cancelled or failed Acquire removes its queue key in the
//     background, with a context of its own, not the cancelled one: the
//     call waits for it at most 20ms, so that it returns within its
//     deadline plus that whatever the cluster does. If etcd cannot be
//     reached the removal is retried until it succeeds, the session ends
//     (which removes the key with the lease) or the Backend is closed.
//   - TryAcquire on a held lock writes no key: one transaction joins
//     the queue only if it is empty, and otherwise reads the holder.
//     (A Backend's first acquisition, a TryAcquire that finds the lock
//     held included, grants its session lease, kept alive until Close.)
//   - Holder never contends: it reads the queue key with the lowest
//     create revision and writes nothing.
//
// # Deadlines
//
// Every call returns within its bound plus a few milliseconds, whatever
// the cluster does (unreachable, partitioned, without a leader):
// Acquire, TryAcquire, Holder and Put within their context's deadline,
// Lease.Release, Lease.SetPurpose and Backend.Close, which have no
// context, within WithOpTimeout in total. Release and SetPurpose of a
// lease whose Lost channel is closed return ErrLost at once, without a
// round trip: etcd deletes the key with the lease. A Release that gets
// no answer in time returns its error and leaves the removal of the key
// to the background retry above. Close stops the background retries;
// keys they had not removed go when the lease expires.
//
// A lock that is free takes one round trip to acquire and one to
// release; a handoff to a waiter takes a watch event and two round
// trips (see BENCHMARKS.md).
//
// # Keys and the holder record
//
// The prefix (WithPrefix) must end in "/", so that two prefixes never
// share keys (nor should one prefix be another's plus a lock name and
// "/"). With the default prefix "agentlock/" the lock "pcm-install"
// uses:
//
//	agentlock/pcm-install                                             state: "held <queue key>" or "released <queue key>", no lease
//	agentlock/pcm-install/<lease id, 16 hex digits>-<sequence, hex>   queue keys, with the session lease
//	agentlock/pcm-install!<lease id>-<sequence>                       fences (rare; see "Joins whose answer was lost"), with the session lease
//
// Only queue keys live under PREFIX NAME "/", the prefix that
// concurrency.Mutex queues under: every key there is a holder or a
// waiter, so neither agentlock nor a Mutex ever waits on a key that
// is not. The state key, which outlives sessions, is PREFIX NAME
// itself, which is under no lock's queue prefix (lock names contain no
// "/"). There is no key for the last token: tokens are create
// revisions, which increase anyway.
//
// The value of a queue key is the holder record, one JSON object:
//
//	{"v":1,"pid":4242,"host":"ws17","purpose":"installing Office 97",
//	 "since":"2025-01-02T03:04:05.123456789Z","start":123456,"boot":"<32 hex digits>"}
//
// v is the format version (1); pid, host and purpose are lock.Holder's;
// since is when the lock was taken (RFC 3339, nanoseconds, UTC); start
// and boot are lock.Holder's ProcessStart and BootID (omitted when
// unknown). The token is not stored: it is the key's create revision.
// A value that is not such an object is reported by Holder as an error
// matching lock.ErrCorrupt (and TryAcquire's BusyError then has a zero
// Holder); it does not change who holds the lock. Unlike the file
// backend's records, the record's pid is not checked for liveness: the
// holder may be on another machine, and the session lease is what
// proves it alive.
//
// # Abandoned
//
// Lease.Abandoned reports whether the previous holder lost the lock
// without releasing it: its process died or was cut off, and its
// session lease expired (or was revoked) while it held the lock. The
// state key records this: the transaction that grants the lock reads it
// and writes "held <our key>"; Release deletes the queue key and writes
// "released <our key>" in one transaction. So a new holder that finds
// "held <another key>" knows its predecessor never released. A missing
// state key (a lock never taken) or "released ..." is a clean handoff;
// any other value cannot rule abandonment out and counts as abandoned.
// Waiters that gave up never wrote "held", so they do not matter.
//
// A foreign holder (below) writes no state. When an agentlock waiter
// gets the lock after waiting for a foreign holder, it asks etcd for
// that holder's lease: if the lease is gone, the holder's session ended
// while it held the lock (its process died, or was cut off), and the
// lock counts as abandoned; if it still exists, the holder unlocked.
// (A holder that unlocks and ends its session at once can be counted as
// abandoned: the safe side.) A foreign holder whose session expired
// while no agentlock process waited behind it leaves no trace: the
// next agentlock holder's Abandoned then reports on the last agentlock
// holder only.
//
// # Sharing a lock with etcdctl lock
//
// `etcdctl lock PREFIX+NAME` and concurrency.NewMutex(session,
// PREFIX+NAME) queue under the same prefix as agentlock's lock NAME,
// by the same rule, so they exclude each other both ways, and each
// hands the lock to the other when it lets go. With the default
// prefix:
//
//	etcdctl lock agentlock/pcm-install ./maintenance.sh
//
// An agentlock caller behind such a holder is told so: TryAcquire's
// *lock.BusyError and Holder give a lock.Holder with Foreign set, the
// key's create revision as Token, and the key and its lease in
// Purpose; the BusyError is wrapped in an error whose message says the
// same. A queue key that is not of
// agentlock's form (lease id, "-", sequence, with that lease) is
// foreign; one of that form whose value is not a record is ErrCorrupt.
// A key there without a lease (one written by hand) holds the lock
// until someone deletes it.
//
// # Lost locks and fencing
//
// A lock in etcd can be lost while it is held: if the holder's process
// is paused (SIGSTOP, a VM migration, a long GC pause) or cut off from
// the cluster for longer than the TTL, its lease expires, its queue
// key is deleted, and the next waiter gets the lock. Lease.Lost is
// closed at the earlier of two events: the session ended (the lease
// expired or was revoked, Backend.Close included), or the local
// deadline passed. The deadline is the time the last answered request
// that renewed the lease was sent (the grant, then a keep-alive the
// backend sends every (TTL-margin)/3), plus the TTL in its answer,
// minus a margin of max(TTL/10, 500ms). The server renews a lease when
// it receives the request, after it was sent, so it cannot expire the
// lease before that deadline plus the margin: Lost closes before the
// lock can pass to someone else, as long as the clocks of client and
// server do not drift apart by more than the margin within a TTL. When
// the deadline passes first, the backend stops keeping the lease alive
// and revokes it. Lost follows only the session: a queue key deleted by
// someone else (etcdctl del) does not close it, though Release and
// SetPurpose then fail with ErrLost, as they do after a lost session.
// A lost grant stays a lease of its Backend until Release: Fenced still
// compares its key, which no longer holds once the key is gone.
//
// Lost is a signal, not a guarantee: a paused process cannot look at it
// at the moment it matters. Jepsen's analysis of etcd 3.4.3 found that
// etcd's locks alone do not guarantee mutual exclusion, for exactly
// this reason. Data the lock guards must therefore check the lock at
// the moment it is written (fencing):
//
//   - Data kept in etcd: make the write a transaction conditional on
//     Backend.Fenced(lease), which compares the lease's queue key with
//     its create revision. etcd evaluates it atomically with the write,
//     so a holder that lost its lock cannot write, whether or not it
//     knows yet. Backend.Put does this for a single key.
//   - The guarded instruction file (package guarded): it refuses a write
//     with a lease whose Lost channel is closed, and one whose token is
//     lower than the token of the last write, so a holder that lost the
//     lock cannot overwrite what its successor wrote. A file system has
//     no compare-and-swap, so a holder paused between those checks and
//     its rename can still write once before its successor's first
//     write. A larger TTL does not close that window, since a pause can
//     last any time; it only makes a loss less likely. Only the tokens
//     protect the file, and only against writers that check them.
//     Writes fenced by Backend.Fenced or Backend.Put have no such
//     window: etcd compares the key in the same transaction.
//   - Other resources: pass Lease.Token along and have the resource
//     refuse tokens lower than the highest it has seen.
//
// # Joins whose answer was lost
//
// When the transaction that joins a lock's queue fails with an
// ambiguous error (its answer was lost: a timeout, a lost connection),
// it may still be applied later: it was in flight, or is retried by
// the client, when the cleanup that removes its key lands. The join
// therefore writes its key only if the key's fence (PREFIX NAME "!"
// and the queue key's base name) does not exist, and that cleanup
// writes the fence, with the session lease, as it deletes the key. A
// late join then does nothing, instead of leaving a key that would
// hold the lock for as long as the session lives. Fences go with the
// session.
package etcdlock
