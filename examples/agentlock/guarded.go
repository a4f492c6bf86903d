package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/guarded"
)

const catUsage = `usage: agentlock cat [flags] PATH

Print the payload of the guarded file PATH (a file written by
guarded.File) on standard output, after checking it whole: a file that
is truncated, damaged or was not written by the lock package is refused,
with the reason, and nothing is printed. It needs no lock: guarded files
are replaced atomically. With -v, the fencing token of the lease that
wrote it and the name of its lock go to standard error.

Exit status: 0; 1 if the file is corrupt or does not exist; 2 on any
other error.

Flags:
`

const putUsage = `usage: agentlock put [flags] NAME PATH < DATA

Replace the guarded file PATH with standard input, holding the lock NAME:
standard input is read whole first (at most 64 MiB), then the lock is
taken, the file replaced atomically and durably, and the lock released.
The write is fenced: it is refused, and the file left as it was, if the
file was written by a lease with a higher token (its token is from the
future: copied from a machine whose clock runs ahead, or written after
the clock was set back) or under another lock. Do not use it from a
command that "agentlock run" runs under the same lock: it would wait for
that lock forever.

Exit status: 0; -E (default 1) if the lock is held (-n) or the wait timed
out (-w); 2 on a usage or other error; 3 if the write was refused by
fencing; 4 if it was refused because the lock was lost once taken (its
lock file was removed or replaced).

Flags:
`

func cmdCat(e *env, args []string) int {
	f := newFlags(e, "cat", catUsage)
	verbose := f.Bool("v", false, "print the token and lock name on standard error")
	if st := f.parse(args); st >= 0 {
		return st
	}
	if f.NArg() != 1 {
		return f.usageError("want one PATH, have %d arguments", f.NArg())
	}
	g, err := guarded.Open(f.Arg(0))
	if err != nil {
		return f.fail(exitUsage, err)
	}
	data, token, name, err := readVersion(g)
	switch {
	case errors.Is(err, lock.ErrCorrupt), errors.Is(err, fs.ErrNotExist):
		return f.fail(exitNo, err)
	case err != nil:
		return f.fail(exitUsage, err)
	}
	if *verbose {
		fmt.Fprintf(e.stderr, "token %d\nlock %s\n", token, name)
	}
	if _, err := e.stdout.Write(data); err != nil {
		return f.fail(exitUsage, err)
	}
	return exitOK
}

// readVersion reads g's payload and token through package guarded,
// which checks the whole file, and the lock name from the file's header
// (the package's documented format: name length at offset 9, name at
// 32, token at 16), which File does not return. The header is read
// separately, so it is taken only from a read of the same version: same
// token and payload length, and same payload bytes; a version replaced
// in between is read again.
func readVersion(g *guarded.File) (data []byte, token uint64, name string, err error) {
	for range 10 {
		data, token, err = g.ReadToken()
		if err != nil {
			return nil, 0, "", err
		}
		raw, err := os.ReadFile(g.Path())
		if err != nil {
			continue
		}
		if len(raw) == 104+len(data) && binary.LittleEndian.Uint64(raw[16:]) == token &&
			raw[9] >= 1 && raw[9] <= lock.MaxNameLen && bytes.Equal(raw[104:], data) {
			return data, token, string(raw[32 : 32+int(raw[9])]), nil
		}
	}
	return nil, 0, "", fmt.Errorf("%s: replaced too often while being read", g.Path())
}

func cmdPut(e *env, args []string) int {
	var b backendFlags
	f := newFlags(e, "put", putUsage)
	noWait := f.Bool("n", false, "fail at once if the lock is held")
	limit := f.Duration("w", 0, "wait at most `DURATION` for the lock (default: no limit)")
	conflict := f.Int("E", exitNo, "exit `CODE` when the lock is held (-n) or the wait times out (-w)")
	b.register(f)
	if st := f.parse(args); st >= 0 {
		return st
	}
	switch {
	case b.check(f) != "":
		return f.usageError("%s", b.check(f))
	case *noWait && f.set("w"):
		return f.usageError("flags -n and -w exclude each other")
	case f.set("w") && *limit <= 0:
		return f.usageError("invalid value %v for flag -w: must be positive", *limit)
	case *conflict < 0 || *conflict > 255:
		return f.usageError("invalid value %d for flag -E: must be 0 to 255", *conflict)
	case f.NArg() != 2:
		return f.usageError("want NAME and PATH, have %d arguments", f.NArg())
	}
	c, st := b.coordinator(f, f.Arg(0), exitUsage, lock.WithPurpose("agentlock put "+f.Arg(1)))
	if st >= 0 {
		return st
	}
	g, err := guarded.Open(f.Arg(1), guarded.By(c))
	if err != nil {
		return f.fail(exitUsage, err)
	}
	data, err := io.ReadAll(io.LimitReader(e.stdin, guarded.MaxSize+1))
	if err != nil {
		return f.fail(exitUsage, fmt.Errorf("standard input: %w", err))
	}
	if len(data) > guarded.MaxSize {
		return f.fail(exitUsage, fmt.Errorf("standard input: more than %d bytes", guarded.MaxSize))
	}

	sig := newRelay()
	defer sig.stop()
	rc := runConfig{name: c.Name(), noWait: *noWait, wait: *limit, conflict: *conflict, failed: exitUsage}
	lease, st := rc.acquire(f, c, sig, nil)
	if st >= 0 {
		return st
	}
	defer lease.Release()
	err = g.Write(lease, data)
	if errors.Is(err, lock.ErrFenced) && isClosed(lease.Lost()) {
		fmt.Fprintf(e.stderr, "agentlock put: lost the lock %s (its lock file was removed or replaced): %s not written\n", c.Name(), f.Arg(1))
		return exitLost
	}
	if errors.Is(err, lock.ErrFenced) {
		return f.fail(exitCheck, err)
	}
	if err != nil {
		return f.fail(exitUsage, err)
	}
	return exitOK
}

// isClosed reports whether ch is closed; a nil ch never is.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
