package poll

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

// The child roles of this package's tests.
const (
	roleHold  = "hold"
	roleTries = "tries"
)

func TestMain(m *testing.M) {
	proctest.Role(roleHold, holdRole)
	proctest.Role(roleTries, triesRole)
	proctest.Main(m)
}

const crossLock = "poll-cross"

// holdRole takes the lock in directory args[0] with purpose args[1],
// says "held TOKEN", holds it for args[2] (a duration), releases it and
// says "released".
func holdRole(args []string, _ *bufio.Scanner, out *proctest.Writer) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "hold: want DIR PURPOSE DURATION")
		return 2
	}
	d, err := time.ParseDuration(args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "hold:", err)
		return 2
	}
	c, err := lock.New(crossLock, lock.WithDir(args[0]))
	if err != nil {
		fmt.Fprintln(os.Stderr, "hold:", err)
		return 1
	}
	l, err := c.Acquire(context.Background(), lock.WithPurpose(args[1]))
	if err != nil {
		fmt.Fprintln(os.Stderr, "hold:", err)
		return 1
	}
	out.Println("held", l.Token())
	time.Sleep(d)
	if err := l.Release(); err != nil {
		fmt.Fprintln(os.Stderr, "hold:", err)
		return 1
	}
	out.Println("released")
	return 0
}

// triesRole takes the lock in directory args[0] args[1] times with
// TryAcquire, holding it for a moment each time, and says "tries BUSY"
// with the number of attempts that found it busy.
func triesRole(args []string, _ *bufio.Scanner, out *proctest.Writer) int {
	n, err := strconv.Atoi(args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "tries:", err)
		return 2
	}
	c, err := lock.New(crossLock, lock.WithDir(args[0]))
	if err != nil {
		fmt.Fprintln(os.Stderr, "tries:", err)
		return 1
	}
	busy := 0
	for range n {
		l, err := c.TryAcquire(context.Background(), lock.WithPurpose("installing X"))
		switch {
		case errors.Is(err, lock.ErrBusy):
			busy++
		case err != nil:
			fmt.Fprintln(os.Stderr, "tries:", err)
			return 1
		default:
			time.Sleep(2 * time.Millisecond) // a hold long enough for the poller to see
			if err := l.Release(); err != nil {
				fmt.Fprintln(os.Stderr, "tries:", err)
				return 1
			}
		}
		time.Sleep(time.Millisecond) // a gap long enough for the poller to find the lock free
	}
	out.Println("tries", busy)
	return 0
}
