package lock

import (
	"time"

	"github.com/agentlock/agentlock/internal/record"
	"github.com/agentlock/agentlock/lock/internal/oslock"
)

// What a lock and its held grant do when the watch on its files
// (oslock.WatchFiles) sees them change.

// watch starts the watch on l's files. The caller holds l.mu.
func (l *fileLock) watch() bool {
	w, err := oslock.WatchFiles(l.f, l.hf.f, l.onWatch)
	if err != nil {
		return false
	}
	l.w = w
	return true
}

// unwatch removes the watch on l's files, before they are closed. The
// caller holds l.mu.
func (l *fileLock) unwatch() {
	l.w.Close()
	l.w = nil
}

// onWatch is called by the watch on l's files:
//
//   - on a change to a file's links or name, it counts it in the lock's
//     events, checks whether a lease of this process lost its files
//     (Lost) and wakes sleepers, whose waits then check theirs;
//   - on a change to a holder file's data, it restores the page's size,
//     republishes this process's record if it holds the lock and wakes
//     sleepers: a page truncated and restored has lost its waiters
//     flag, so the next release would wake nobody;
//   - on a close of the lock file by another process (a holder dying,
//     as far as waiters care), it wakes this process's sleepers.
func (l *fileLock) onWatch(ev oslock.Event) {
	if ev&oslock.PathChanged != 0 {
		l.events.Add(1)
		if g := l.held.Load(); g != nil {
			g.checkLost(l)
		}
		if l.ws.Sleepers.Load() > 0 {
			oslock.WakeSleepers(l.ready.Load())
		}
	}
	if ev&oslock.HolderModified != 0 {
		if p := l.ready.Load(); p != nil {
			p.WakeSeq() // faults, and so restores the page, if it shrank
		}
		if g := l.held.Load(); g != nil {
			g.republish()
		}
		if l.ws.Sleepers.Load() > 0 {
			oslock.WakeSleepers(l.ready.Load())
		}
	}
	if ev&oslock.LockClosed != 0 {
		l.ws.LastClose.Store(time.Now().UnixNano())
		if l.ws.Sleepers.Load() > 0 {
			l.deathWake()
		}
	}
}

// pathsUnchanged reports, without a system call, that the watch has
// seen nothing happen to l's files since they were last found at their
// paths.
//
// An event the kernel has queued but the reader has not yet counted (a
// removal in the microseconds before the lock was taken) is missed
// here; the reader then counts it microseconds later and, the lock
// being held by now, closes the lease's Lost, exactly as for a removal
// just after the lock was taken, which no check can prevent. Asking the
// kernel (FIONREAD) would close that window at the cost of a system
// call per acquisition, for no difference a caller could observe.
//
// Where the system has no watch it reports true once the files have
// been checked: with nothing to say when they change, verify checks
// them only after a wait (Windows' own identity check is a handful of
// system calls, too many for every uncontended acquisition).
func (l *fileLock) pathsUnchanged() bool {
	if !oslock.CanWatch {
		return l.verified != ^uint64(0)
	}
	return l.watched.Load() && l.events.Load() == l.verified
}

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
//
// Where the system has no watch there is nothing to check: the count of
// changes never moves.
func (g *pageGrant) checkLost(l *fileLock) {
	if !oslock.CanWatch || g.lockF == nil {
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

// deathWake wakes the lock's sleepers after another process closed the
// lock file, and again a few times over the next milliseconds: the
// kernel reports a dying process's close just before it drops the
// process's locks.
func (l *fileLock) deathWake() {
	oslock.WakeSleepers(l.ready.Load())
	if !l.waking.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer l.waking.Store(false)
		for d := time.Millisecond; d <= 16*time.Millisecond; d *= 2 {
			time.Sleep(d)
			oslock.WakeSleepers(l.ready.Load())
		}
	}()
}

// republish stores the record again, after the page was truncated
// and restored (or written over) by someone else.
func (g *pageGrant) republish() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.released || g.lost {
		return
	}
	if c, err := g.page.Load(); err == nil && c.State == record.Held && c.Token == g.holder.Token && int(c.PID) == g.holder.PID {
		return
	}
	r := g.holder.toRecord(record.Held)
	g.page.Store(&r)
}
