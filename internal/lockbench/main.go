//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

// Command lockbench measures agentlock's file backend across processes
// against the raw flock(2) system call and github.com/gofrs/flock, all
// in one run on one machine, and prints the figures of DESIGN §7 as
// ratios to raw flock (see BENCHMARKS.md).
//
//	go run ./internal/lockbench [-quick]
//
// It re-executes itself for the child processes it needs.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofrs/flock"
	"golang.org/x/sys/unix"

	"github.com/agentlock/agentlock/lock"
)

const lockName = "bench"

// An impl is one way of taking the lock file DIR/bench.lock.
type impl interface {
	lock(ctx context.Context) error
	try() (bool, error)
	unlock() error
}

type raw struct{ fd int }

func newRaw(dir string) impl {
	fd, err := unix.Open(filepath.Join(dir, lockName+".lock"), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o666)
	check(err)
	return &raw{fd}
}
func (r *raw) lock(ctx context.Context) error { return unix.Flock(r.fd, unix.LOCK_EX) }
func (r *raw) try() (bool, error) {
	err := unix.Flock(r.fd, unix.LOCK_EX|unix.LOCK_NB)
	if err == unix.EWOULDBLOCK {
		return false, nil
	}
	return err == nil, err
}
func (r *raw) unlock() error { return unix.Flock(r.fd, unix.LOCK_UN) }

// naive blocks in flock(2) in a goroutine and abandons it on cancel: the
// design that leaves a phantom hold (shown to prove the check works).
type naive struct{ raw }

func (n *naive) lock(ctx context.Context) error {
	done := make(chan error, 1)
	go func() {
		err := unix.Flock(n.fd, unix.LOCK_EX)
		if ctx.Err() != nil && err == nil {
			time.Sleep(20 * time.Millisecond) // the "owner" notices late
			unix.Flock(n.fd, unix.LOCK_UN)
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

type gofrs struct {
	f     *flock.Flock
	retry time.Duration // 0: blocking Lock
}

func (g *gofrs) lock(ctx context.Context) error {
	if g.retry == 0 {
		return g.f.Lock()
	}
	ok, err := g.f.TryLockContext(ctx, g.retry)
	if err == nil && !ok {
		err = errors.New("not locked")
	}
	return err
}
func (g *gofrs) try() (bool, error) { return g.f.TryLock() }
func (g *gofrs) unlock() error      { return g.f.Unlock() }

type agent struct {
	c *lock.Coordinator
	l *lock.Lease
}

func (a *agent) lock(ctx context.Context) (err error) {
	a.l, err = a.c.Acquire(ctx)
	return err
}
func (a *agent) try() (bool, error) {
	l, err := a.c.TryAcquire(context.Background())
	var be *lock.BusyError
	if errors.As(err, &be) {
		if be.Holder.PID == 0 {
			return false, errors.New("busy without a holder record")
		}
		return false, nil
	}
	a.l = l
	return err == nil, err
}
func (a *agent) unlock() error { return a.l.Release() }

func newImpl(kind, dir string) impl {
	switch kind {
	case "raw":
		return newRaw(dir)
	case "naive":
		return &naive{*newRaw(dir).(*raw)}
	case "gofrs":
		return &gofrs{f: flock.New(filepath.Join(dir, lockName+".lock"))}
	case "gofrs-10ms":
		return &gofrs{f: flock.New(filepath.Join(dir, lockName+".lock")), retry: 10 * time.Millisecond}
	case "gofrs-1ms":
		return &gofrs{f: flock.New(filepath.Join(dir, lockName+".lock")), retry: time.Millisecond}
	case "agentlock":
		c, err := lock.New(lockName, lock.WithDir(dir), lock.WithPurpose("benchmarking"))
		check(err)
		return &agent{c: c}
	}
	panic("unknown impl " + kind)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "lockbench:", err)
		os.Exit(1)
	}
}

// ---- child side ----

// child runs commands from stdin: "lock", "unlock", "trylock",
// "lockat" (lock, print the wall clock in ns), "cpu DUR" (lock, report
// CPU used while waiting), "cancel DUR" (lock with a timeout, report
// how late it returned), "loop DUR" (lock/unlock until DUR passes,
// report the count).
func child(kind, dir string) {
	im := newImpl(kind, dir)
	in := bufio.NewScanner(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	say := func(a ...any) { fmt.Fprintln(out, a...); out.Flush() }
	say("ready")
	for in.Scan() {
		cmd, arg, _ := strings.Cut(in.Text(), " ")
		switch cmd {
		case "lock":
			check(im.lock(context.Background()))
			say("locked")
		case "unlock":
			check(im.unlock())
			say("unlocked")
		case "lockat":
			say("waiting")
			check(im.lock(context.Background()))
			t := time.Now().UnixNano()
			check(im.unlock())
			say(t)
		case "cpu":
			var a, b unix.Rusage
			unix.Getrusage(unix.RUSAGE_SELF, &a)
			say("waiting")
			start := time.Now()
			check(im.lock(context.Background()))
			wall := time.Since(start)
			unix.Getrusage(unix.RUSAGE_SELF, &b)
			check(im.unlock())
			cpu := time.Duration(b.Utime.Nano() + b.Stime.Nano() - a.Utime.Nano() - a.Stime.Nano())
			say(int64(cpu), int64(wall))
		case "cancel":
			d, _ := time.ParseDuration(arg)
			ctx, cancel := context.WithTimeout(context.Background(), d)
			dl, _ := ctx.Deadline()
			say("waiting")
			err := im.lock(ctx)
			late := time.Since(dl)
			cancel()
			if err == nil {
				check(im.unlock())
				say("locked")
				continue
			}
			say(int64(late))
		case "loop":
			d, _ := time.ParseDuration(arg)
			n := 0
			for end := time.Now().Add(d); time.Now().Before(end); n++ {
				check(im.lock(context.Background()))
				check(im.unlock())
			}
			say(n)
		}
	}
}

// ---- parent side ----

type proc struct {
	cmd *exec.Cmd
	in  *bufio.Writer
	out *bufio.Scanner
}

func spawn(kind, dir string) *proc {
	exe, err := os.Executable()
	check(err)
	cmd := exec.Command(exe, "-child", kind, "-dir", dir)
	cmd.Stderr = os.Stderr
	w, err := cmd.StdinPipe()
	check(err)
	r, err := cmd.StdoutPipe()
	check(err)
	check(cmd.Start())
	p := &proc{cmd: cmd, in: bufio.NewWriter(w), out: bufio.NewScanner(r)}
	p.expect("ready")
	return p
}

func (p *proc) send(s string) { fmt.Fprintln(p.in, s); p.in.Flush() }
func (p *proc) line() string {
	if !p.out.Scan() {
		check(fmt.Errorf("child exited: %v", p.out.Err()))
	}
	return p.out.Text()
}
func (p *proc) expect(s string) {
	if l := p.line(); l != s {
		check(fmt.Errorf("child said %q, want %q", l, s))
	}
}
func (p *proc) close() { p.cmd.Process.Kill(); p.cmd.Wait() }

func freshDir() string {
	d, err := os.MkdirTemp("", "lockbench")
	check(err)
	return d
}

// uncontended: ns per lock+unlock pair in one process, best of 5 runs.
func uncontended(kind string, n int) float64 {
	dir := freshDir()
	defer os.RemoveAll(dir)
	im := newImpl(kind, dir)
	best := 0.0
	for r := 0; r < 5; r++ {
		start := time.Now()
		for i := 0; i < n; i++ {
			check(im.lock(context.Background()))
			check(im.unlock())
		}
		ns := float64(time.Since(start).Nanoseconds()) / float64(n)
		if best == 0 || ns < best {
			best = ns
		}
	}
	return best
}

// busyTry: ns per failing attempt while another process holds the lock
// (through agentlock, so a holder record exists), best of 5 runs.
func busyTry(dir, kind string, n int) float64 {
	im := newImpl(kind, dir)
	best := 0.0
	for r := 0; r < 5; r++ {
		start := time.Now()
		for i := 0; i < n; i++ {
			ok, err := im.try()
			check(err)
			if ok {
				check(errors.New("try succeeded on a held lock"))
			}
		}
		ns := float64(time.Since(start).Nanoseconds()) / float64(n)
		if best == 0 || ns < best {
			best = ns
		}
	}
	return best
}

// handoff: the parent holds, a child blocks, the parent releases; the
// latency is from just before the release to the child's acquisition.
func handoff(kind string, rounds int) []time.Duration {
	dir := freshDir()
	defer os.RemoveAll(dir)
	im := newImpl(kind, dir)
	c := spawn(kind, dir)
	defer c.close()
	var d []time.Duration
	for i := 0; i < rounds; i++ {
		check(im.lock(context.Background()))
		c.send("lockat")
		c.expect("waiting")
		time.Sleep(3 * time.Millisecond) // the child is asleep in its wait
		t0 := time.Now().UnixNano()
		check(im.unlock())
		t1, err := strconv.ParseInt(c.line(), 10, 64)
		check(err)
		d = append(d, time.Duration(t1-t0))
	}
	slices.Sort(d)
	return d
}

func waiterCPU(kind string, hold time.Duration) (cpu, wall time.Duration) {
	dir := freshDir()
	defer os.RemoveAll(dir)
	im := newImpl(kind, dir)
	c := spawn(kind, dir)
	defer c.close()
	check(im.lock(context.Background()))
	c.send("cpu")
	c.expect("waiting")
	time.Sleep(hold)
	check(im.unlock())
	f := strings.Fields(c.line())
	a, _ := strconv.ParseInt(f[0], 10, 64)
	b, _ := strconv.ParseInt(f[1], 10, 64)
	return time.Duration(a), time.Duration(b)
}

// cancel: a child waits with a 50 ms timeout while the parent holds;
// the parent then releases and for 100 ms checks with raw flock that
// nobody holds the lock (a phantom hold would show up as busy).
func cancel(kind string, rounds int) (late []time.Duration, phantoms int) {
	dir := freshDir()
	defer os.RemoveAll(dir)
	im := newImpl(kind, dir)
	probe := newRaw(dir)
	c := spawn(kind, dir)
	defer c.close()
	for i := 0; i < rounds; i++ {
		check(im.lock(context.Background()))
		c.send("cancel 50ms")
		c.expect("waiting")
		l := c.line()
		if l == "locked" {
			check(errors.New("cancelled wait returned the lock"))
		}
		n, _ := strconv.ParseInt(l, 10, 64)
		late = append(late, time.Duration(n))
		check(im.unlock())
		for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); {
			ok, err := probe.try()
			check(err)
			if !ok {
				phantoms++
				break
			}
			check(probe.unlock())
			time.Sleep(200 * time.Microsecond)
		}
	}
	slices.Sort(late)
	return late, phantoms
}

func throughput(kind string, procs int, d time.Duration) float64 {
	dir := freshDir()
	defer os.RemoveAll(dir)
	var ps []*proc
	for i := 0; i < procs; i++ {
		ps = append(ps, spawn(kind, dir))
	}
	for _, p := range ps {
		p.send("loop " + d.String())
	}
	total := 0
	for _, p := range ps {
		n, err := strconv.Atoi(p.line())
		check(err)
		total += n
		p.close()
	}
	return float64(total) / d.Seconds()
}

func pct(d []time.Duration, p float64) time.Duration {
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

func main() {
	kind := flag.String("child", "", "run as a child with this implementation")
	dir := flag.String("dir", "", "lock directory (child)")
	quick := flag.Bool("quick", false, "fewer rounds (a smoke run, not for BENCHMARKS.md)")
	only := flag.String("only", "", "measure only these figures (comma separated: uncontended,busy,handoff,cpu,cancel,throughput)")
	flag.Parse()
	if *kind != "" {
		child(*kind, *dir)
		return
	}
	n, rounds, cpuHold, loop := 200000, 300, 3*time.Second, 2*time.Second
	if *quick {
		n, rounds, cpuHold, loop = 20000, 30, 500*time.Millisecond, 300*time.Millisecond
	}
	fmt.Printf("lockbench: %s/%s, %d CPUs, %s, %s\n\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), time.Now().UTC().Format(time.RFC3339))

	want := func(f string) bool { return *only == "" || slices.Contains(strings.Split(*only, ","), f) }
	fmt.Println("| figure | raw flock | gofrs/flock | agentlock | agentlock ÷ raw | target |")
	fmt.Println("|---|---|---|---|---|---|")
	if want("uncontended") {
		ur, ug, ua := uncontended("raw", n), uncontended("gofrs", n), uncontended("agentlock", n)
		fmt.Printf("| uncontended Acquire+Release (ns) | %.0f | %.0f (%.1f×) | %.0f | **%.2f×** | ≤ 2× |\n", ur, ug, ug/ur, ua, ua/ur)
	}
	if want("busy") {
		bdir := freshDir()
		holder := spawn("agentlock", bdir)
		holder.send("lock")
		holder.expect("locked")
		br, bg, ba := busyTry(bdir, "raw", n), busyTry(bdir, "gofrs", n), busyTry(bdir, "agentlock", n)
		holder.close()
		os.RemoveAll(bdir)
		fmt.Printf("| TryAcquire on a busy lock, with holder (ns) | %.0f | %.0f (%.1f×, no holder) | %.0f | **%.2f×** | ≤ 2× |\n", br, bg, bg/br, ba, ba/br)
	}
	if want("handoff") {
		// Raw flock and agentlock run interleaved, in three batches, so
		// that drift in the machine's load hits both alike.
		var hr, ha []time.Duration
		for i := 0; i < 3; i++ {
			hr = append(hr, handoff("raw", rounds/3)...)
			ha = append(ha, handoff("agentlock", rounds/3)...)
		}
		slices.Sort(hr)
		slices.Sort(ha)
		hgb := handoff("gofrs", rounds/3)
		hg10 := handoff("gofrs-10ms", rounds/3)
		hg1 := handoff("gofrs-1ms", rounds)
		fmt.Printf("| handoff p50 (µs) | %.1f | blocking Lock: %.1f (%.1f×); 10 ms poll: %.0f (%.0f×); 1 ms poll: %.0f (%.0f×) | %.1f | **%.2f×** | ≤ 1.5× |\n",
			us(pct(hr, .5)), us(pct(hgb, .5)), ratio(pct(hgb, .5), pct(hr, .5)), us(pct(hg10, .5)), ratio(pct(hg10, .5), pct(hr, .5)), us(pct(hg1, .5)), ratio(pct(hg1, .5), pct(hr, .5)), us(pct(ha, .5)), ratio(pct(ha, .5), pct(hr, .5)))
		fmt.Printf("| handoff p99 (µs) | %.1f | 10 ms poll: %.0f; 1 ms poll: %.0f | %.1f | %.2f× | |\n",
			us(pct(hr, .99)), us(pct(hg10, .99)), us(pct(hg1, .99)), us(pct(ha, .99)), ratio(pct(ha, .99), pct(hr, .99)))
	}
	if want("cpu") {
		cpuR, wR := waiterCPU("raw", cpuHold)
		cpuG, wG := waiterCPU("gofrs-1ms", cpuHold)
		cpuA, wA := waiterCPU("agentlock", cpuHold)
		fmt.Printf("| CPU of a waiter blocked %v (%% of a core) | %.3f | 1 ms poll: %.2f | %.3f | | ≤ 0.2 %% |\n",
			cpuHold, 100*cpuR.Seconds()/wR.Seconds(), 100*cpuG.Seconds()/wG.Seconds(), 100*cpuA.Seconds()/wA.Seconds())
	}
	if want("cancel") {
		lateN, phN := cancel("naive", rounds/10)
		lateG, phG := cancel("gofrs-10ms", rounds/10)
		lateA, phA := cancel("agentlock", rounds/10)
		fmt.Printf("| cancel: return after ctx ends, p50 / max (ms); phantom holds seen | blocking flock in a goroutine: %.2f / %.2f; %d of %d | 10 ms poll: %.2f / %.2f; %d | %.2f / %.2f; **%d of %d** | | ≤ 10 ms, none |\n",
			ms(pct(lateN, .5)), ms(lateN[len(lateN)-1]), phN, len(lateN), ms(pct(lateG, .5)), ms(lateG[len(lateG)-1]), phG, ms(pct(lateA, .5)), ms(lateA[len(lateA)-1]), phA, len(lateA))
	}
	if want("throughput") {
		// Contended throughput swings widely from run to run (it depends
		// on which process the scheduler favours), so the three run
		// interleaved, three times, and the medians are compared.
		var rs, gs, as []float64
		for i := 0; i < 3; i++ {
			rs = append(rs, throughput("raw", 8, loop))
			gs = append(gs, throughput("gofrs", 8, loop))
			as = append(as, throughput("agentlock", 8, loop))
		}
		tr, tg, ta := median(rs), median(gs), median(as)
		fmt.Printf("| 8 processes contending (acquisitions/s, median of 3) | %.0f | %.0f (%.2f×) | %.0f | **%.2f×** | ≥ 0.8× |\n", tr, tg, tg/tr, ta, ta/tr)
	}
}

func median(v []float64) float64 {
	slices.Sort(v)
	return v[len(v)/2]
}

func us(d time.Duration) float64       { return float64(d.Nanoseconds()) / 1e3 }
func ms(d time.Duration) float64       { return float64(d.Nanoseconds()) / 1e6 }
func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }
