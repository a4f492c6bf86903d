package poll_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/poll"
)

// A desktop poller that tells the user about installs, not queries. The
// installer here is another coordinator in the same process; in real
// life it is a service in another process.
func Example() {
	dir, err := os.MkdirTemp("", "poll-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	installer, err := lock.New("pcm-install", lock.WithDir(dir))
	if err != nil {
		log.Fatal(err)
	}
	install, err := installer.Acquire(context.Background(), lock.WithPurpose("installing Office 97"))
	if err != nil {
		log.Fatal(err)
	}

	c, err := lock.New("pcm-install", lock.WithDir(dir), lock.WithPurpose("querying"))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := poll.New(c,
		func(ctx context.Context, lease *lock.Lease) error {
			fmt.Println("reading the instruction file")
			cancel() // one round is enough for the example
			return nil
		},
		poll.WithInterval(10*time.Millisecond),
		poll.WithImmediateStart(),
		poll.WithPolicy(poll.All(poll.Purposes("installing*"), poll.RateLimit(time.Minute))),
		poll.OnBusy(func(e poll.Event) {
			fmt.Printf("please wait: %s (attempt %d)\n", e.Holder.Purpose, e.Attempt)
			install.Release() // the installer finishes
		}),
		poll.OnError(func(err error) { fmt.Println("error:", err) }),
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Run(ctx))
	// Output:
	// please wait: installing Office 97 (attempt 1)
	// reading the instruction file
	// context canceled
}

// The policy users can switch: $AGENTLOCK_NOTIFY, falling back to the
// program's default when it is unset or wrong.
func ExamplePolicyFromEnv() {
	policy, err := poll.PolicyFromEnv(poll.EnvNotify, poll.All(poll.Purposes("installing*"), poll.After(30*time.Second)))
	if err != nil {
		// Shown to the user (or logged) by the program; the default is in
		// effect.
		fmt.Fprintln(os.Stderr, err)
	}
	_ = policy // poll.WithPolicy(policy)
}

// A tool that must run as soon as the installer is done.
func ExampleAcquireNotify() {
	c, err := lock.New("pcm-install", lock.WithPurpose("repairing shortcuts"))
	if err != nil {
		log.Fatal(err)
	}
	lease, err := poll.AcquireNotify(context.Background(), c, poll.After(5*time.Second),
		func(e poll.Event) {
			fmt.Printf("pid %d has been %s for %v; you have waited %v\n",
				e.Holder.PID, e.Holder.Purpose, e.Busy.Round(time.Second), e.Waited.Round(time.Second))
		},
		poll.WithInterval(time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer lease.Release()
	// ... work under the lock ...
}
