package lock

import (
	"bufio"
	"context"
	"testing"
	"time"

	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

const roleSlowPublish = "slow-publish"

func init() { proctest.Role(roleSlowPublish, slowPublishRole) }

// slowPublishRole: args dir. Takes the lock "slow" with purpose "late",
// saying "locked" and then pausing 300 ms between locking and
// publishing, as a holder stopped or starved there would; says "held"
// once published, and holds until its input closes.
func slowPublishRole(args []string, in *bufio.Scanner, out *proctest.Writer) int {
	c, err := New("slow", WithDir(args[0]))
	if err != nil {
		return out.Fail(err)
	}
	testHookPublish = func() {
		out.Println("locked")
		time.Sleep(300 * time.Millisecond) // the stall is what is tested
	}
	if _, err := c.Acquire(context.Background(), WithPurpose("late")); err != nil {
		return out.Fail(err)
	}
	out.Println("held")
	for in.Scan() {
	}
	return 0
}

// TestHolderWaitsForSlowPublisher: Holder of a lock whose holder (of
// this package) has locked but not yet published its record waits for
// the record rather than report a holder without one, as long as the
// holder takes less than holderPatience.
func TestHolderWaitsForSlowPublisher(t *testing.T) {
	dir := proctest.TempDir(t)
	c, err := New("slow", WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	ch := proctest.Start(t, roleSlowPublish, dir)
	ch.Expect("locked", time.Minute)
	h, err := c.Holder(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if h.PID != ch.PID() || h.Purpose != "late" || h.Foreign {
		t.Fatalf("Holder = %+v; want the record of pid %d, purpose \"late\"", h, ch.PID())
	}
	ch.Expect("held", time.Minute)
}
