package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// run -n fails at once and run -w after its timeout, with -E's status
// and the holder on standard error; the command never runs.
func TestRunWhenHeld(t *testing.T) {
	dir := lockDir(t)
	h := startHolder(t, dir, "pcm-install", "installing Office 97")
	marker := filepath.Join(dir, "ran")
	holderText := fmt.Sprintf(`pcm-install is held by pid %d on `, h.pid)

	r := agentlock(t, "", append([]string{"run", "-n", "-dir", dir, "pcm-install", "--"}, helperArgv(t, "touch", marker)...)...)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, holderText)
	assert.Contains(t, r.stderr, `("installing Office 97")`)
	assert.Less(t, r.elapsed, 10*time.Second, "run -n must not wait") // generous: the machine is loaded

	r = agentlock(t, "", append([]string{"run", "-n", "-E", "9", "-dir", dir, "pcm-install", "--"}, helperArgv(t, "touch", marker)...)...)
	assert.Equal(t, 9, r.code)

	r = agentlock(t, "", append([]string{"run", "-w", "200ms", "-dir", dir, "pcm-install", "--"}, helperArgv(t, "touch", marker)...)...)
	assert.Equal(t, 1, r.code)
	assert.GreaterOrEqual(t, r.elapsed, 200*time.Millisecond)
	assert.Less(t, r.elapsed, 10*time.Second)
	assert.Contains(t, r.stderr, "timed out after 200ms")
	assert.Contains(t, r.stderr, fmt.Sprintf("held by pid %d on ", h.pid))

	assert.NoFileExists(t, marker)

	// Once released, run -w gets it.
	h.release(t)
	r = agentlock(t, "", append([]string{"run", "-w", "10s", "-dir", dir, "pcm-install", "--"}, helperArgv(t, "touch", marker)...)...)
	assert.Equal(t, 0, r.code)
	assert.FileExists(t, marker)
}

// run returns the command's status and gives it the lock's name and
// token; while the command runs, the lock is held by agentlock with the
// command line as its purpose.
func TestRunStatusAndEnvironment(t *testing.T) {
	dir := lockDir(t)
	run := func(argv ...string) result {
		return agentlock(t, "", append([]string{"run", "-dir", dir, "job", "--"}, argv...)...)
	}
	assert.Equal(t, 0, run(helperArgv(t, "exit", "0")...).code)
	assert.Equal(t, 7, run(helperArgv(t, "exit", "7")...).code)
	r := run(filepath.Join(dir, "no-such-command"))
	assert.Equal(t, 127, r.code)
	assert.NoFileExists(t, filepath.Join(dir, "no-such-command"))

	before := time.Now().UnixNano()
	r = run(helperArgv(t, "env")...)
	require.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "AGENTLOCK_NAME=job\n")
	assert.Contains(t, r.stdout, "AGENTLOCK_SERVER=\n")
	i := strings.Index(r.stdout, "AGENTLOCK_TOKEN=")
	require.GreaterOrEqual(t, i, 0)
	tok, err := strconv.ParseUint(strings.Fields(r.stdout[i+len("AGENTLOCK_TOKEN="):])[0], 10, 64)
	require.NoError(t, err)
	assert.Greater(t, tok, uint64(before), "tokens are at least the wall clock at acquisition")

	// The command asks who holds the lock: agentlock run, with its
	// command line as the purpose (or -purpose).
	r = run(exe(t), "who", "-json", "-dir", dir, "job")
	require.Equal(t, 0, r.code, "the lock is held while the command runs")
	assert.Contains(t, r.stdout, `"state":"held"`)
	assert.Contains(t, r.stdout, strconv.Quote(exe(t) + " who -json -dir " + dir + " job")[1:])
	r = agentlock(t, "", "run", "-purpose", "installing Office 97", "-dir", dir, "job", exe(t), "who", "-dir", dir, "job")
	assert.Contains(t, r.stdout, "purpose  installing Office 97")

	assert.Equal(t, 1, agentlock(t, "", "who", "-dir", dir, "job").code, "released after the command")
}

// The named-mutex backend: run holds it, who and ls see it, and the file
// backend's lock of the same name is another lock.
func TestRunMutexBackend(t *testing.T) {
	dir := lockDir(t)
	r := agentlock(t, "", "run", "-mutex", "-scope", "local", "-dir", dir, "job", "--", exe(t), "who", "-mutex", "-scope", "local", "-dir", dir, "job")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "job: held")
	r = agentlock(t, "", "run", "-mutex", "-dir", dir, "job", "--", exe(t), "ls", "-mutex", "-dir", dir)
	assert.Equal(t, 0, r.code)
	assert.Regexp(t, `(?m)^job\s+held by pid \d+`, r.stdout)
	r = agentlock(t, "", "run", "-mutex", "-dir", dir, "job", "--", exe(t), "who", "-dir", dir, "job")
	assert.Equal(t, 1, r.code, "the file backend's lock is another lock")
	assert.Equal(t, 1, agentlock(t, "", "who", "-mutex", "-dir", dir, "job").code)
}

// kill -9 of agentlock run never leaves the command running without
// the lock: once the lock can be taken, the command has stopped.
func TestRunKilledCommandDoesNotRunUnlocked(t *testing.T) {
	dir := lockDir(t)
	ticks := filepath.Join(dir, "ticks")
	s := start(t, append([]string{"run", "-dir", dir, "job", "--"}, helperArgv(t, "tick", ticks)...)...)
	eventually(t, 20*time.Second, "the command ticks", func() bool {
		b, _ := os.ReadFile(ticks)
		return strings.Count(string(b), "\n") >= 5
	})
	require.NoError(t, s.cmd.Process.Kill())
	s.wait(t, 10*time.Second)

	c := coordinator(t, dir, "job")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lease, err := c.Acquire(ctx)
	require.NoError(t, err, "the lock is released when agentlock dies")
	defer lease.Release()
	assert.True(t, lease.Abandoned())

	// The command may take a moment to be reaped by the system after
	// it was killed, but it must write nothing more while we hold the
	// lock. Its last write may still be in flight as we look; allow
	// one, then none.
	time.Sleep(50 * time.Millisecond)
	size := fileSize(t, ticks)
	time.Sleep(500 * time.Millisecond)
	if !assert.Equal(t, size, fileSize(t, ticks), "the command went on running after agentlock was killed") {
		killTicker(t, ticks)
	}
}

// killTicker kills the tick helper that wrote path, after a failure.
func killTicker(t *testing.T, path string) {
	b, _ := os.ReadFile(path)
	var pid int
	fmt.Sscanf(string(b), "pid %d", &pid)
	if p, err := os.FindProcess(pid); err == nil && pid > 0 {
		p.Kill()
	}
}

func fileSize(t *testing.T, path string) int64 {
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Size()
}

// silentServer accepts connections and never answers them, like a
// server behind a dead link.
func silentServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String() + "/health"
}

// -check validates first and locks second: against a silent server the
// lock is never taken (a concurrent reader never sees it held) and the
// status says no valid server; with a failover list the live server is
// used and named to the command.
func TestRunCheck(t *testing.T) {
	dir := lockDir(t)
	silent := silentServer(t)
	marker := filepath.Join(dir, "ran")

	c := coordinator(t, dir, "pcm-install")
	var seen atomic.Int64
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.Holder(context.Background()); err == nil {
				seen.Add(1)
			}
			time.Sleep(time.Millisecond) // sample the holder while run runs
		}
	}()
	r := agentlock(t, "", append([]string{"run", "-check", silent, "-check-timeout", "500ms", "-dir", dir, "pcm-install", "--"},
		helperArgv(t, "touch", marker)...)...)
	close(stop)
	<-watched
	assert.Equal(t, 3, r.code)
	assert.Contains(t, r.stderr, "no valid logon server")
	assert.Contains(t, r.stderr, silent)
	assert.GreaterOrEqual(t, r.elapsed, 500*time.Millisecond)
	assert.Zero(t, seen.Load(), "the lock was held while the server was being checked")
	assert.NoFileExists(t, marker)

	// A refused port and a missing directory fail the same way.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := ln.Addr().String()
	ln.Close()
	r = agentlock(t, "", append([]string{"run", "-check", refused, "-check", filepath.Join(dir, "no-share"), "-C", "76",
		"-dir", dir, "pcm-install", "--"}, helperArgv(t, "touch", marker)...)...)
	assert.Equal(t, 76, r.code)
	assert.Contains(t, r.stderr, refused)
	assert.NoFileExists(t, marker)

	// Failover: the silent server, then a live one.
	var health atomic.Int64
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		health.Add(1)
		fmt.Fprintln(w, "ok")
	}))
	defer live.Close()
	r = agentlock(t, "", append([]string{"run", "-check", silent, "-check", live.URL + "/health", "-check-timeout", "300ms",
		"-dir", dir, "pcm-install", "--"}, helperArgv(t, "env")...)...)
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "AGENTLOCK_SERVER="+live.URL+"/health\n")
	assert.Equal(t, int64(1), health.Load())

	// A share (a directory) that exists passes.
	r = agentlock(t, "", append([]string{"run", "-check", dir, "-dir", dir, "pcm-install", "--"}, helperArgv(t, "env")...)...)
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "AGENTLOCK_SERVER="+dir+"\n")
}
