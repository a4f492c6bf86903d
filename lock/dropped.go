package lock

import (
	"runtime"
	"sync"
)

// Releasing dropped leases.
//
// A Lease that becomes unreachable unreleased has its grant released
// by a cleanup (runtime.AddCleanup). Adding one, and stopping it on
// Release, costs about as much as the rest of an acquisition apart
// from its system calls, and most leases are released long before any
// collection. So a new lease waits on a list (guarding, held by the
// list) and gets its cleanup only at the end of the first collection
// that finds it still there; a lease released before then leaves the
// list and never has one. A dropped lease is thus collected, and its
// lock released, a collection later than a cleanup added at once would
// manage; that is within what Lease promises ("at some collection
// after it became unreachable").
//
// A cleanup rather than a finalizer: finalizers run one at a time on
// one goroutine, which any of the program's finalizers can hold up (an
// os.File's closes its file, and waits for reads still in progress on
// it, a pipe's say), and the lock would then stay held; cleanups run on
// goroutines of their own, concurrently. A lease is guarded once it
// has its grant, so the cleanup is given the grant itself.

var guarding struct {
	mu      sync.Mutex
	head    *Lease // the list, linked through Lease.prev and Lease.next
	ticking bool   // a collection will call guardAll
}

// guard puts a new lease on the list.
func guard(l *Lease) {
	guarding.mu.Lock()
	l.listed = true
	l.next = guarding.head
	if l.next != nil {
		l.next.prev = l
	}
	guarding.head = l
	if !guarding.ticking {
		guarding.ticking = true
		tick()
	}
	guarding.mu.Unlock()
}

// unguard takes a lease that is being released off the list, or
// stops its cleanup if a collection gave it one.
func unguard(l *Lease) {
	guarding.mu.Lock()
	listed := l.listed
	if listed {
		if l.prev != nil {
			l.prev.next = l.next
		} else {
			guarding.head = l.next
		}
		if l.next != nil {
			l.next.prev = l.prev
		}
		l.prev, l.next, l.listed = nil, nil, false
	}
	cleaned := l.cleaned
	guarding.mu.Unlock()
	if !listed && cleaned {
		l.cleanup.Stop()
		runtime.KeepAlive(l) // a cleanup of an unreachable l could be queued already
	}
}

// tick arranges for guardAll to run at the end of the next collection:
// an object nothing refers to is collected by it, and its cleanup runs.
func tick() {
	runtime.AddCleanup(new(gcTick), func(struct{}) { guardAll() }, struct{}{})
}

// gcTick is tick's object: a pointer makes it an allocation of its
// own, rather than a part of a tiny block that other values keep alive.
type gcTick struct{ _ *byte }

// guardAll gives every lease on the list its cleanup and empties the
// list; the next lease put on it ticks again.
func guardAll() {
	guarding.mu.Lock()
	defer guarding.mu.Unlock()
	for l := guarding.head; l != nil; {
		next := l.next
		// A grant never refers to its lease, so the cleanup runs once
		// l is unreachable.
		l.cleanup = runtime.AddCleanup(l, dropped, l.g)
		l.cleaned = true
		l.prev, l.next, l.listed = nil, nil, false
		l = next
	}
	guarding.head = nil
	guarding.ticking = false
}

// dropped is the cleanup of a Lease that became unreachable without
// Release. It releases on a goroutine of its own: a backend's Release
// may wait on the network.
func dropped(g Grant) {
	if g != nil { // a Backend that broke its contract: nothing to release
		go g.Release()
	}
}
