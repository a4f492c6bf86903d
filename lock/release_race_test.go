package lock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

const roleSlowRelease = "slow-release"

func init() { proctest.Role(roleSlowRelease, slowReleaseRole) }

// testBackend is the backend kind ("file" or "mutex") on dir.
func testBackend(kind, dir string) (Backend, error) {
	if kind == "mutex" {
		return NewNamedMutexBackend(WithMutexDir(dir))
	}
	return NewFileBackend(dir)
}

// slowReleaseRole: args kind dir name. Takes the lock and says "held";
// on "release" releases it, pausing 2 ms between publishing its
// released record and unlocking (saying "releasing" as the pause
// begins), then says "released" and waits for the next "acquire".
func slowReleaseRole(args []string, in *bufio.Scanner, out *proctest.Writer) int {
	b, err := testBackend(args[0], args[1])
	if err != nil {
		return out.Fail(err)
	}
	c, err := New(args[2], WithBackend(b))
	if err != nil {
		return out.Fail(err)
	}
	testHookRelease = func() {
		out.Println("releasing")
		time.Sleep(2 * time.Millisecond) // the moment under test
	}
	for {
		l, err := c.Acquire(context.Background(), WithPurpose("releasing slowly"))
		if err != nil {
			return out.Fail(err)
		}
		out.Println("held")
		if !in.Scan() {
			return 0
		}
		if err := l.Release(); err != nil {
			return out.Fail(err)
		}
		out.Println("released")
		if !in.Scan() {
			return 0
		}
	}
}

// TestTryAcquireDuringRelease: a TryAcquire made while the holder, in
// another process, is between publishing its release and unlocking
// takes the lock once it is free, or reports the holder by name; it
// never reports the lock busy with nobody to name (which it did when
// the holder's unlock came after TryAcquire's look at the record).
func TestTryAcquireDuringRelease(t *testing.T) {
	for _, kind := range []string{"file", "mutex"} {
		t.Run(kind, func(t *testing.T) {
			dir := proctest.TempDir(t)
			name := fmt.Sprintf("release-%d", os.Getpid()) // mutexes are machine-wide
			b, err := testBackend(kind, dir)
			if err != nil {
				t.Fatal(err)
			}
			c, err := New(name, WithBackend(b))
			if err != nil {
				t.Fatal(err)
			}
			ch := proctest.Start(t, roleSlowRelease, kind, dir, name)
			took := 0
			for i := 0; i < 20; i++ {
				ch.Expect("held", time.Minute)
				ch.Send("release")
				ch.Expect("releasing", time.Minute)
				l, err := c.TryAcquire(context.Background())
				var be *BusyError
				switch {
				case err == nil:
					took++
					ch.Expect("released", time.Minute)
					if err := l.Release(); err != nil {
						t.Fatal(err)
					}
				case errors.As(err, &be) && (be.Holder.PID != 0 || runtime.GOOS != "linux"):
					// Named; or, where no lock table names a holder, the
					// holder's unlock came later than the retries (a
					// loaded machine, Wine).
					ch.Expect("released", time.Minute)
				default:
					t.Fatalf("round %d: TryAcquire during a release: %v (holder %+v)", i, err, be)
				}
				ch.Send("acquire")
			}
			t.Logf("%d of 20 TryAcquires during a release took the lock", took)
			if took == 0 {
				t.Error("no TryAcquire during a release took the lock")
			}
		})
	}
}

// TestTryAcquireDuringReleaseInProcess: the same with the holder a
// goroutine of this process, whose release is seen first on the
// in-process semaphore: a TryAcquire then takes the lock or names the
// holder, never reports it busy with nobody to name.
func TestTryAcquireDuringReleaseInProcess(t *testing.T) {
	dir := proctest.TempDir(t)
	holder, err := New("inproc", WithDir(dir), WithPurpose("looping"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := New("inproc", WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	testHookRelease = func() { time.Sleep(200 * time.Microsecond) } // the moment under test
	defer func() { testHookRelease = nil }()
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			l, err := holder.Acquire(context.Background())
			if err == nil {
				err = l.Release()
			}
			if err != nil {
				done <- err
				return
			}
			time.Sleep(time.Millisecond) // free moments, for TryAcquire to take
		}
	}()
	took, nameless := 0, 0
	for i := 0; i < 300; i++ {
		l, err := c.TryAcquire(context.Background())
		var be *BusyError
		switch {
		case err == nil:
			took++
			l.Release()
		case errors.As(err, &be) && be.Holder.PID != 0:
		case errors.As(err, &be):
			nameless++ // a release slower than the retries: rare
		default:
			close(stop)
			t.Fatalf("try %d: %v", i, err)
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Without the retry about a third of the tries found the lock busy
	// with nobody to name.
	if nameless > 10 {
		t.Errorf("%d of 300 TryAcquires found the lock busy with nobody to name", nameless)
	}
	t.Logf("%d of 300 TryAcquires took the lock, %d found it busy with nobody to name", took, nameless)
}
