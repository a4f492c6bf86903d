package etcdlock

import "github.com/agentlock/agentlock/lock"

// GrantOf returns the grant behind l, so that tests can call its
// methods as a buggy or retrying caller would.
func (b *Backend) GrantOf(l *lock.Lease) lock.Grant {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.grants[l.Token()]
}
