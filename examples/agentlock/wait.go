package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/agentlock/agentlock/lock"
)

const waitUsage = `usage: agentlock wait [flags] NAME

Return as soon as the lock NAME is free, without taking it: a script can
wait for the installer to finish before it starts a step of its own that
takes the lock (which may of course be taken again in between).

wait only reads the holder record, every 5 ms, and never touches the lock,
so nobody sees the lock busy because of it; it notices a release (or the
holder's death) within about 5 ms. A program that locks NAME.lock
without this package publishes no record: on Linux wait sees it in the
system's lock table and waits for it like any holder; elsewhere it does
not see it and returns at once.

A holder record that reads as corrupt or missing (its holder file was
truncated or removed, which the holder repairs) does not end the wait:
the lock may still be held, so wait reads on.

Exit status: 0 once the lock is free, 1 if -w ran out first, 2 on an
error that waiting cannot cure, 128+N if signal N ended the wait.

Flags:
`

// waitInterval is how often wait reads the holder record. The lock
// package offers no way to sleep until a release without taking part
// in the lock, and a read costs a few microseconds (a shared memory
// page and, for the liveness check, one system call), so a short
// interval buys a prompt answer cheaply.
const waitInterval = 5 * time.Millisecond

func cmdWait(e *env, args []string) int {
	var b backendFlags
	f := newFlags(e, "wait", waitUsage)
	limit := f.Duration("w", 0, "give up after `DURATION` (default: no limit)")
	b.register(f)
	if st := b.parse(f, args); st >= 0 {
		return st
	}
	if f.set("w") && *limit <= 0 {
		return f.usageError("invalid value %v for flag -w: must be positive", *limit)
	}
	if f.NArg() != 1 {
		return f.usageError("want one NAME, have %d arguments", f.NArg())
	}
	c, st := b.coordinator(f, f.Arg(0), exitUsage)
	if st >= 0 {
		return st
	}
	sig := newRelay()
	defer sig.stop()
	ctx := sig.ctx
	if *limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *limit)
		defer cancel()
	}
	err := waitFree(ctx, c)
	switch {
	case err == nil:
		return exitOK
	case sig.received() != nil:
		return signalStatus(sig.received())
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(e.stderr, "agentlock wait: %s still held after %v, %s\n", c.Name(), *limit, holderNow(c))
		return exitNo
	}
	return f.fail(exitUsage, err)
}

// waitFree returns nil once c's lock is free, ctx's error, or an error
// that cannot go away by waiting. A corrupt or missing holder record is
// not such an error: a truncated or replaced holder file is restored,
// and the holder republishes its record, while the lock stays held.
func waitFree(ctx context.Context, c *lock.Coordinator) error {
	t := time.NewTicker(waitInterval)
	defer t.Stop()
	for {
		_, err := c.Holder(ctx)
		switch {
		case errors.Is(err, lock.ErrNotHeld):
			return nil
		case err == nil, errors.Is(err, lock.ErrCorrupt), errors.Is(err, fs.ErrNotExist):
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
