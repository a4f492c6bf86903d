package lock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
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
				case errors.As(err, &be) && be.Holder.PID != 0:
					ch.Expect("released", time.Minute)
				default:
					t.Fatalf("round %d: TryAcquire during a release: %v (holder %+v)", i, err, be)
				}
				ch.Send("acquire")
			}
			t.Logf("%d of 20 TryAcquires during a release took the lock", took)
		})
	}
}
