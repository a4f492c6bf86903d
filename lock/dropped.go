package lock

import (
	"runtime"
	"sync"
)

// Releasing dropped leases.
//
// A Lease that becomes unreachable unreleased is released by a
// finalizer. Setting a finalizer, and clearing it on Release, costs
// about as much as the rest of an acquisition apart from its system
// calls, and most leases are released long before any collection. So
// a new lease waits on a list (guarding, held by the list) and gets
// its finalizer only at the end of the first collection that finds it
// still there; a lease released before then leaves the list and never
// has one. A dropped lease is thus collected, and its lock released, a
// collection later than a finalizer set at once would manage; that is
// within what Lease promises ("at some collection after it became
// unreachable").

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
// clears its finalizer if a collection gave it one.
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
	guarding.mu.Unlock()
	if !listed {
		// guardAll set it (under guarding.mu, so it is set by now).
		runtime.SetFinalizer(l, nil)
	}
}

// tick arranges for guardAll to run after the next collection: an
// object nothing refers to is collected by it, and its finalizer runs.
// A finalizer, as the leases' own are, so that releasing a dropped lease
// depends on the finalizer goroutine only. (With a cleanup here, two CI
// runs on a 2-CPU machine, where the runtime runs all cleanups on one
// goroutine, never released a dropped lease; the cause was not found.)
func tick() {
	runtime.SetFinalizer(new(gcTick), func(*gcTick) { guardAll() })
}

// gcTick is tick's object: a pointer makes it an allocation of its
// own, rather than a part of a tiny block that other values keep alive.
type gcTick struct{ _ *byte }

// guardAll gives every lease on the list its finalizer and empties the
// list; the next lease put on it ticks again.
func guardAll() {
	guarding.mu.Lock()
	defer guarding.mu.Unlock()
	for l := guarding.head; l != nil; {
		next := l.next
		// Nothing that l refers to refers back to l, so the finalizer
		// runs once l is unreachable.
		runtime.SetFinalizer(l, dropped)
		l.prev, l.next, l.listed = nil, nil, false
		l = next
	}
	guarding.head = nil
	guarding.ticking = false
}

// dropped is the finalizer of a Lease that became unreachable without
// Release. It releases on a goroutine of its own: a backend's Release
// may wait on the network, and finalizers run one at a time.
func dropped(l *Lease) {
	if l.g != nil {
		go l.g.Release()
	}
}
