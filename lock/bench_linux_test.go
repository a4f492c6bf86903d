//go:build linux

package lock_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkWaitPieces times, warm and in isolation, pieces that a wait
// could add to the way out of Acquire: stopping the context.AfterFunc
// that wakes sleepers on cancellation (a wait skips it for a context
// that cannot be cancelled), and stopping a goroutine parked reading an
// inotify descriptor with a read deadline in the past, which is what a
// death watch set up per wait cost on the way out before the watch
// became one per process, armed for its life (oslock.WatchFiles). In a
// real hand-off such pieces run cold, right after a long sleep, which
// costs far more than these figures (see BENCHMARKS.md).
func BenchmarkWaitPieces(b *testing.B) {
	b.Run("AfterFunc+stop", func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for b.Loop() {
			context.AfterFunc(ctx, func() {})()
		}
	})
	b.Run("AfterFunc+stop/Background", func(b *testing.B) {
		for b.Loop() {
			context.AfterFunc(context.Background(), func() {})()
		}
	})
	b.Run("watch-stop", func(b *testing.B) { benchWatchStop(b, false) })
	b.Run("watch-stop+exit", func(b *testing.B) { benchWatchStop(b, true) })
}

// benchWatchStop parks a goroutine in a read of an inotify descriptor
// (outside the timer) and times the stop: setting a deadline in the
// past, and with exit, until the goroutine has returned.
func benchWatchStop(b *testing.B, exit bool) {
	path := filepath.Join(b.TempDir(), "watched")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	ifd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := unix.InotifyAddWatch(ifd, path, unix.IN_CLOSE_WRITE|unix.IN_CLOSE_NOWRITE); err != nil {
		b.Fatal(err)
	}
	in := os.NewFile(uintptr(ifd), "inotify")
	defer in.Close()
	buf := make([]byte, 4096)
	for b.Loop() {
		b.StopTimer()
		in.SetReadDeadline(time.Time{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				if _, err := in.Read(buf); err != nil {
					return
				}
			}
		}()
		for range 3 {
			runtime.Gosched() // let it run until it parks in the poller
		}
		b.StartTimer()
		in.SetReadDeadline(time.Unix(1, 0))
		if exit {
			<-done
		} else {
			b.StopTimer()
			<-done
			b.StartTimer()
		}
	}
}
