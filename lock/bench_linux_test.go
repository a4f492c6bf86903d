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

// BenchmarkWaitPieces times, warm and in isolation, the pieces that a
// wait of more than 10 ms adds to the way out of Acquire: stopping the
// context.AfterFunc that wakes sleepers on cancellation, and stopping
// the death watch's goroutine, which is parked reading an inotify
// descriptor and is stopped by a read deadline in the past. In a real
// hand-off they run cold, right after a long sleep, and the stop readies
// a goroutine while the runtime is just waking up, which costs far more
// than these figures (see BENCHMARKS.md and go run ./internal/lockbench).
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
