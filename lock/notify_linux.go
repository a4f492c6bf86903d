package lock

import (
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/agentlock/agentlock/internal/record"
	"github.com/agentlock/agentlock/lock/internal/oslock"
)

// The watch: one inotify instance per process, with one watch per open
// lock file and one per open holder file, kept for the life of the
// process like the files. (The per-user limit on inotify instances is
// small, 128 by default, and shared by all of a user's programs; the
// limit on watches is in the thousands or more.) One goroutine reads
// the instance and:
//
//   - on a close of a lock file by another process (a holder dying, as
//     far as waiters care), wakes this process's sleepers on that lock;
//   - on a change to a file's links or name (IN_ATTRIB, IN_MOVE_SELF,
//     IN_DELETE_SELF: removed, replaced, renamed), counts it in the
//     lock's events, checks whether a lease of this process lost its
//     files (Lost) and wakes sleepers, whose waits then check theirs;
//   - on a change to a holder file's data (IN_MODIFY: truncated or
//     written over; stores through the mapping make no event), restores
//     the page's size and republishes this process's record if it holds
//     the lock.
var notify struct {
	once sync.Once
	fd   int // -1 if the instance could not be made
	f    *os.File

	mu  sync.Mutex
	wds map[int32][]notifyTarget
}

type notifyTarget struct {
	l      *fileLock
	holder bool
}

// watchState is a lock's watch descriptors (what the watch needs to
// know of the lock's sleepers is in fileLock.ws).
type watchState struct {
	lockWD, holderWD int32
	waking           atomic.Bool // a death wake-up is under way
}

const (
	lockMask   = unix.IN_CLOSE_WRITE | unix.IN_CLOSE_NOWRITE | pathMask
	holderMask = unix.IN_MODIFY | pathMask
	pathMask   = unix.IN_ATTRIB | unix.IN_MOVE_SELF | unix.IN_DELETE_SELF
)

func startNotify() {
	notify.fd = -1
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return
	}
	notify.fd = fd
	notify.f = os.NewFile(uintptr(fd), "inotify")
	notify.wds = make(map[int32][]notifyTarget)
	go readNotify()
}

// watchFiles adds l's watches. The caller holds l.mu.
func watchFiles(l *fileLock) error {
	notify.once.Do(startNotify)
	if notify.fd < 0 {
		return errNoWatch
	}
	// The watches are on the open files themselves (through
	// /proc/self/fd), not on whatever the paths name now.
	add := func(f *os.File, mask uint32) (int32, error) {
		wd, err := unix.InotifyAddWatch(notify.fd, "/proc/self/fd/"+strconv.Itoa(int(f.Fd())), mask)
		return int32(wd), err
	}
	lwd, err := add(l.f, lockMask)
	if err != nil {
		return err
	}
	hwd, err := add(l.hf.f, holderMask)
	if err != nil {
		unix.InotifyRmWatch(notify.fd, uint32(lwd))
		return err
	}
	notify.mu.Lock()
	notify.wds[lwd] = append(notify.wds[lwd], notifyTarget{l, false})
	notify.wds[hwd] = append(notify.wds[hwd], notifyTarget{l, true})
	notify.mu.Unlock()
	l.w.lockWD, l.w.holderWD = lwd, hwd
	return nil
}

// unwatchFiles removes l's watches. The caller holds l.mu.
func unwatchFiles(l *fileLock) {
	notify.mu.Lock()
	for _, wd := range []int32{l.w.lockWD, l.w.holderWD} {
		ts := notify.wds[wd]
		for i, t := range ts {
			if t.l == l {
				ts = append(ts[:i], ts[i+1:]...)
				break
			}
		}
		if len(ts) == 0 {
			delete(notify.wds, wd)
			unix.InotifyRmWatch(notify.fd, uint32(wd))
		} else {
			notify.wds[wd] = ts
		}
	}
	notify.mu.Unlock()
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
func pathsUnchanged(l *fileLock) bool {
	return l.watched.Load() && l.events.Load() == l.verified
}

func readNotify() {
	rc, err := notify.f.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 64<<10)
	for {
		err := rc.Read(func(fd uintptr) bool {
			n, err := unix.Read(int(fd), buf)
			if err == unix.EAGAIN {
				return false
			}
			if n > 0 {
				dispatch(buf[:n])
			}
			return true
		})
		if err != nil {
			return
		}
	}
}

func dispatch(b []byte) {
	for len(b) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		b = b[min(len(b), unix.SizeofInotifyEvent+int(ev.Len)):]
		if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
			// Events were dropped: assume the worst for every lock.
			notify.mu.Lock()
			var all []notifyTarget
			for _, ts := range notify.wds {
				all = append(all, ts...)
			}
			notify.mu.Unlock()
			for _, t := range all {
				handle(t, unix.IN_ATTRIB|unix.IN_MODIFY|unix.IN_CLOSE_WRITE)
			}
			continue
		}
		notify.mu.Lock()
		ts := notify.wds[ev.Wd]
		if ev.Mask&unix.IN_IGNORED != 0 {
			delete(notify.wds, ev.Wd)
		}
		notify.mu.Unlock()
		for _, t := range ts {
			handle(t, ev.Mask)
		}
	}
}

func handle(t notifyTarget, mask uint32) {
	l := t.l
	if mask&pathMask != 0 {
		l.events.Add(1)
		if g := l.held.Load(); g != nil {
			g.checkLost(l)
		}
		if l.ws.Sleepers.Load() > 0 {
			oslock.WakeSleepers(l.ready.Load())
		}
	}
	if t.holder && mask&unix.IN_MODIFY != 0 {
		if p := l.ready.Load(); p != nil {
			p.WakeSeq() // faults, and so restores the page, if it shrank
		}
		if g := l.held.Load(); g != nil {
			g.republish()
		}
	}
	if !t.holder && mask&(unix.IN_CLOSE_WRITE|unix.IN_CLOSE_NOWRITE) != 0 {
		l.ws.LastClose.Store(time.Now().UnixNano())
		if l.ws.Sleepers.Load() > 0 {
			l.deathWake()
		}
	}
}

// deathWake wakes the lock's sleepers after another process closed the
// lock file, and again a few times over the next milliseconds: the
// kernel reports a dying process's close just before it drops the
// process's locks.
func (l *fileLock) deathWake() {
	oslock.WakeSleepers(l.ready.Load())
	if !l.w.waking.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer l.w.waking.Store(false)
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
