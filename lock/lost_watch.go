//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package lock

import (
	"github.com/agentlock/agentlock/internal/record"
	"github.com/agentlock/agentlock/lock/internal/oslock"
)

// What a held grant does when the watch on its files (notify_linux.go,
// notify_bsd.go) sees them change.

// markLost records that the grant's files are no longer the files at
// their paths: another process may lock the file now at the path, so
// the grant no longer excludes anyone, and the page is no longer the
// one others read, or another holder's.
func (g *pageGrant) markLost() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lost || g.released {
		return
	}
	g.lost = true
	if g.lostCh != nil {
		close(g.lostCh)
	}
}

// checkLost is called when the watch sees a change to l's files while
// the grant holds the lock. If the lock file is no longer the file at
// its path, the grant has lost the lock: another process may lock the
// file now there. If only the holder file is, the lock is sound and its
// holder is the one process entitled to write the page now at the
// path: the grant moves there and publishes its record (and token)
// again, and never publishes on the old page.
func (g *pageGrant) checkLost(l *fileLock) {
	if g.lockF == nil {
		return
	}
	if !oslock.SameFile(g.lockF, l.lockPath) {
		g.markLost()
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.released || g.lost || oslock.SameFile(g.holderF, g.hf.path) {
		return
	}
	page, err := l.reopen(false, true)
	if err != nil {
		// No page to publish on: the grant cannot say it holds.
		g.lost = true
		if g.lostCh != nil {
			close(g.lostCh)
		}
		return
	}
	g.page, g.holderF = page, l.hf.f
	r := g.holder.toRecord(record.Held)
	page.Store(&r)
}
