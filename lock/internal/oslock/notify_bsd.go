//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package oslock

import (
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// The watch on macOS and the BSDs: one kqueue per process, with a
// vnode filter on each open lock file and holder file for removal and
// renaming (NOTE_DELETE, NOTE_RENAME, NOTE_LINK), read by one goroutine
// that reports them as PathChanged. Unlike inotify, kqueue reports
// neither closes (a holder dying: waits see it at their fallback
// interval, see wait_bsd.go) nor truncation reliably, so a truncated
// holder page is restored only when a process touches it.
var kwatch struct {
	once sync.Once
	fd   int // -1 if the kqueue could not be made

	mu  sync.Mutex
	ids map[int][]notifyTarget // watched descriptor → its lock
}

type notifyTarget struct {
	fn func(Event)
}

const canWatch = true

// watch is the descriptors a lock has registered.
type watch struct{ lockFD, holderFD int }

const vnodeMask = unix.NOTE_DELETE | unix.NOTE_RENAME | unix.NOTE_LINK

func startKwatch() {
	kwatch.fd = -1
	fd, err := unix.Kqueue()
	if err != nil {
		return
	}
	unix.CloseOnExec(fd)
	kwatch.fd = fd
	kwatch.ids = make(map[int][]notifyTarget)
	go readKwatch()
}

func watchFiles(lockF, holderF *os.File, fn func(Event)) (*Watch, error) {
	kwatch.once.Do(startKwatch)
	if kwatch.fd < 0 {
		return nil, errNoWatch
	}
	lfd, hfd := int(lockF.Fd()), int(holderF.Fd())
	var ch [2]unix.Kevent_t
	for i, fd := range []int{lfd, hfd} {
		unix.SetKevent(&ch[i], fd, unix.EVFILT_VNODE, unix.EV_ADD|unix.EV_CLEAR)
		ch[i].Fflags = vnodeMask
	}
	kwatch.mu.Lock()
	defer kwatch.mu.Unlock()
	if _, err := unix.Kevent(kwatch.fd, ch[:], nil, nil); err != nil {
		return nil, err
	}
	w := &Watch{watch{lfd, hfd}}
	kwatch.ids[lfd] = append(kwatch.ids[lfd], notifyTarget{fn})
	kwatch.ids[hfd] = append(kwatch.ids[hfd], notifyTarget{fn})
	return w, nil
}

func (w *watch) close() {
	kwatch.mu.Lock()
	defer kwatch.mu.Unlock()
	for _, fd := range []int{w.lockFD, w.holderFD} {
		var ch [1]unix.Kevent_t
		unix.SetKevent(&ch[0], fd, unix.EVFILT_VNODE, unix.EV_DELETE)
		unix.Kevent(kwatch.fd, ch[:], nil, nil)
		delete(kwatch.ids, fd)
	}
}

func readKwatch() {
	var evs [32]unix.Kevent_t
	for {
		n, err := unix.Kevent(kwatch.fd, nil, evs[:], nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range evs[:n] {
			kwatch.mu.Lock()
			ts := append([]notifyTarget(nil), kwatch.ids[int(ev.Ident)]...)
			kwatch.mu.Unlock()
			for _, t := range ts {
				t.fn(PathChanged)
			}
		}
	}
}
