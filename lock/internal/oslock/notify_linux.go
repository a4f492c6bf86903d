package oslock

import (
	"os"
	"strconv"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The watch on Linux: one inotify instance per process, with one watch
// per open lock file and one per open holder file, kept for the life of
// the process like the files. (The per-user limit on inotify instances
// is small, 128 by default, and shared by all of a user's programs; the
// limit on watches is in the thousands or more.) One goroutine reads
// the instance and reports:
//
//   - a close of a lock file by another process (IN_CLOSE_WRITE,
//     IN_CLOSE_NOWRITE: a holder dying, as far as waiters care) as
//     LockClosed;
//   - a change to a file's links or name (IN_ATTRIB, IN_MOVE_SELF,
//     IN_DELETE_SELF: removed, replaced, renamed) as PathChanged;
//   - a change to a holder file's data (IN_MODIFY: truncated or written
//     over; stores through the mapping make no event) as
//     HolderModified.
var notify struct {
	once sync.Once
	fd   int // -1 if the instance could not be made
	f    *os.File

	mu  sync.Mutex
	wds map[int32][]notifyTarget
}

type notifyTarget struct {
	w      *watch
	fn     func(Event)
	holder bool
}

const canWatch = true

// watch is the watch descriptors of one lock's files.
type watch struct{ lockWD, holderWD int32 }

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

func watchFiles(lockF, holderF *os.File, fn func(Event)) (*Watch, error) {
	notify.once.Do(startNotify)
	if notify.fd < 0 {
		return nil, errNoWatch
	}
	// The watches are on the open files themselves (through
	// /proc/self/fd), not on whatever the paths name now.
	add := func(f *os.File, mask uint32) (int32, error) {
		wd, err := unix.InotifyAddWatch(notify.fd, "/proc/self/fd/"+strconv.Itoa(int(f.Fd())), mask)
		return int32(wd), err
	}
	lwd, err := add(lockF, lockMask)
	if err != nil {
		return nil, err
	}
	hwd, err := add(holderF, holderMask)
	if err != nil {
		unix.InotifyRmWatch(notify.fd, uint32(lwd))
		return nil, err
	}
	w := &Watch{watch{lwd, hwd}}
	notify.mu.Lock()
	notify.wds[lwd] = append(notify.wds[lwd], notifyTarget{&w.watch, fn, false})
	notify.wds[hwd] = append(notify.wds[hwd], notifyTarget{&w.watch, fn, true})
	notify.mu.Unlock()
	return w, nil
}

func (w *watch) close() {
	notify.mu.Lock()
	for _, wd := range []int32{w.lockWD, w.holderWD} {
		ts := notify.wds[wd]
		for i, t := range ts {
			if t.w == w {
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
	var ev Event
	if mask&pathMask != 0 {
		ev |= PathChanged
	}
	if t.holder && mask&unix.IN_MODIFY != 0 {
		ev |= HolderModified
	}
	if !t.holder && mask&(unix.IN_CLOSE_WRITE|unix.IN_CLOSE_NOWRITE) != 0 {
		ev |= LockClosed
	}
	if ev != 0 {
		t.fn(ev)
	}
}
