package etcdlock_test

import (
	"bufio"
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/etcdlock"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

// The child roles of this package's tests (roleCount and roleHold are
// their functions).
const (
	roleNameCount = "etcd-count"
	roleNameHold  = "etcd-hold"
)

func registerRoles() {
	proctest.Role(roleNameCount, roleCount)
	proctest.Role(roleNameHold, roleHold)
}

// childBackend: args prefix ttl.
func childBackend(prefix, ttl string) (*etcdlock.Backend, error) {
	c, err := client()
	if err != nil {
		return nil, err
	}
	d, err := time.ParseDuration(ttl)
	if err != nil {
		return nil, err
	}
	return etcdlock.New(c, etcdlock.WithPrefix(prefix), etcdlock.WithTTL(d))
}

// roleCount: args prefix ttl name key n. n times: lock, read the
// counter at key in etcd, write it back plus one with a fenced put,
// unlock. Prints "done".
func roleCount(args []string, in *bufio.Scanner, out *proctest.Writer) int {
	b, err := childBackend(args[0], args[1])
	if err != nil {
		return out.Fail(err)
	}
	defer b.Close()
	c, err := lock.New(args[2], lock.WithBackend(b))
	if err != nil {
		return out.Fail(err)
	}
	cli, _ := client()
	key := args[3]
	n, _ := strconv.Atoi(args[4])
	ctx := context.Background()
	for i := 0; i < n; i++ {
		l, err := c.Acquire(ctx)
		if err != nil {
			return out.Fail(err)
		}
		resp, err := cli.Get(ctx, key)
		if err != nil {
			return out.Fail(err)
		}
		v := 0
		if len(resp.Kvs) > 0 {
			v, _ = strconv.Atoi(string(resp.Kvs[0].Value))
		}
		if err := b.Put(ctx, l, key, strconv.Itoa(v+1)); err != nil {
			return out.Fail(err)
		}
		if err := l.Release(); err != nil {
			return out.Fail(err)
		}
	}
	out.Println("done")
	return 0
}

// roleHold: args prefix ttl name key. Acquires, prints "locked TOKEN
// ABANDONED", then obeys: "put V" (a fenced put of V at key: "ok" or
// "fenced"), "lost D" (waits up to D for Lease.Lost: "lost" or
// "notlost"), "release" ("released", or "lost" for ErrLost).
func roleHold(args []string, in *bufio.Scanner, out *proctest.Writer) int {
	b, err := childBackend(args[0], args[1])
	if err != nil {
		return out.Fail(err)
	}
	c, err := lock.New(args[2], lock.WithBackend(b), lock.WithPurpose("holding"))
	if err != nil {
		return out.Fail(err)
	}
	key := args[3]
	ctx := context.Background()
	l, err := c.Acquire(ctx)
	if err != nil {
		return out.Fail(err)
	}
	out.Println("locked", l.Token(), l.Abandoned())
	for in.Scan() {
		cmd, arg, _ := strings.Cut(in.Text(), " ")
		switch cmd {
		case "put":
			err := b.Put(ctx, l, key, arg)
			switch {
			case err == nil:
				out.Println("ok")
			case errors.Is(err, lock.ErrFenced):
				out.Println("fenced")
			default:
				return out.Fail(err)
			}
		case "lost":
			d, _ := time.ParseDuration(arg)
			select {
			case <-l.Lost():
				out.Println("lost")
			case <-time.After(d):
				out.Println("notlost")
			}
		case "release":
			err := l.Release()
			switch {
			case err == nil:
				out.Println("released")
			case errors.Is(err, etcdlock.ErrLost):
				out.Println("lost")
			default:
				return out.Fail(err)
			}
		}
	}
	return 0
}
