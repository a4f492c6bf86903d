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
// program's default when it is unset or wrong. The error says what is
// wrong; the program says that it keeps the default.
func ExamplePolicyFromEnv() {
	def := poll.All(poll.Purposes("installing*"), poll.After(30*time.Second))

	os.Setenv(poll.EnvNotify, "purpose=installing*;every=5m")
	policy, err := poll.PolicyFromEnv(poll.EnvNotify, def)
	fmt.Println(policy, err)

	os.Setenv(poll.EnvNotify, "sometimes")
	policy, err = poll.PolicyFromEnv(poll.EnvNotify, def)
	if err != nil {
		// Shown to the user (or logged) by the program.
		fmt.Printf("%v (using the default policy %v)\n", err, policy)
	}
	os.Unsetenv(poll.EnvNotify)
	// Output:
	// purpose=installing*;every=5m0s <nil>
	// poll: invalid notification policy in $AGENTLOCK_NOTIFY "sometimes": term "sometimes": unknown keyword (want never, always, default, after=, purpose= or every=) (using the default policy purpose=installing*;after=30s)
}

// A tool that must run as soon as the installer is done: it waits for
// the lock and says meanwhile why. The installer here is another
// coordinator in the same process; in real life it is a service.
func ExampleAcquireNotify() {
	dir, err := os.MkdirTemp("", "poll-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	installer, _ := lock.New("pcm-install", lock.WithDir(dir))
	install, err := installer.Acquire(context.Background(), lock.WithPurpose("installing Office 97"))
	if err != nil {
		log.Fatal(err)
	}

	c, err := lock.New("pcm-install", lock.WithDir(dir), lock.WithPurpose("repairing shortcuts"))
	if err != nil {
		log.Fatal(err)
	}
	lease, err := poll.AcquireNotify(context.Background(), c, poll.After(0),
		func(e poll.Event) {
			// Busy: how long the installer has been at it; Waited: how
			// long this tool has been waiting.
			fmt.Printf("waiting: %s, busy for %v, waited %v\n", e.Holder.Purpose,
				e.Busy.Round(time.Minute), e.Waited.Round(time.Minute))
			install.Release() // the installer finishes
		},
		poll.WithInterval(10*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	defer lease.Release()
	fmt.Println("got the lock:", lease.Holder().Purpose)
	// ... work under the lock ...
	// Output:
	// waiting: installing Office 97, busy for 0s, waited 0s
	// got the lock: repairing shortcuts
}
