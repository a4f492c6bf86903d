//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package lock

import (
	"sync"

	"golang.org/x/sys/unix"
)

// The watch on macOS and the BSDs: one kqueue per process, with a
// vnode filter on each open lock file and holder file for removal and
// renaming (NOTE_DELETE, NOTE_RENAME, NOTE_LINK), read by one goroutine
// that counts the changes in the lock's events and tells a lease of
// this process that lost its lock file (Lost). Unlike inotify, kqueue
// reports neither closes (a holder dying: waits see it at their
// fallback interval, see oslock's wait_bsd.go) nor truncation reliably, so a
// truncated holder page is restored only when a process touches it.
var kwatch struct {
	once sync.Once
	fd   int // -1 if the kqueue could not be made

	mu  sync.Mutex
	ids map[int][]notifyTarget // watched descriptor → its lock
}

type notifyTarget struct {
	l      *fileLock
	holder bool
}

// watchState is the descriptors a lock has registered.
type watchState struct{ lockFD, holderFD int }

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

// watchFiles registers l's files. The caller holds l.mu.
func watchFiles(l *fileLock) error {
	kwatch.once.Do(startKwatch)
	if kwatch.fd < 0 {
		return errNoWatch
	}
	lfd, hfd := int(l.f.Fd()), int(l.hf.f.Fd())
	var ch [2]unix.Kevent_t
	for i, fd := range []int{lfd, hfd} {
		unix.SetKevent(&ch[i], fd, unix.EVFILT_VNODE, unix.EV_ADD|unix.EV_CLEAR)
		ch[i].Fflags = vnodeMask
	}
	kwatch.mu.Lock()
	defer kwatch.mu.Unlock()
	if _, err := unix.Kevent(kwatch.fd, ch[:], nil, nil); err != nil {
		return err
	}
	kwatch.ids[lfd] = append(kwatch.ids[lfd], notifyTarget{l, false})
	kwatch.ids[hfd] = append(kwatch.ids[hfd], notifyTarget{l, true})
	l.w = watchState{lfd, hfd}
	return nil
}

// unwatchFiles removes l's registrations, before its files are closed.
// The caller holds l.mu.
func unwatchFiles(l *fileLock) {
	kwatch.mu.Lock()
	defer kwatch.mu.Unlock()
	for _, fd := range []int{l.w.lockFD, l.w.holderFD} {
		var ch [1]unix.Kevent_t
		unix.SetKevent(&ch[0], fd, unix.EVFILT_VNODE, unix.EV_DELETE)
		unix.Kevent(kwatch.fd, ch[:], nil, nil)
		delete(kwatch.ids, fd)
	}
}

// pathsUnchanged reports that the watch has seen nothing happen to l's
// files since they were last found at their paths (see the Linux
// version for why that needs no system call).
func pathsUnchanged(l *fileLock) bool {
	return l.watched.Load() && l.events.Load() == l.verified
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
				t.l.events.Add(1)
				if g := t.l.held.Load(); g != nil {
					g.checkLost(t.l)
				}
			}
		}
	}
}
