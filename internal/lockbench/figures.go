//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd || windows

package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Every figure runs cfg.rounds rounds. Inside a round the kinds take
// turns batch by batch (or sample by sample), and the kind that goes
// first rotates, so that a change in the machine's load hits all of
// them alike; the ratios are taken round by round.

var bg = context.Background()

// dirs makes a lock directory for each kind: each kind has its own lock
// file, so that one kind's opens and closes do not reach another's
// waiters.
func dirs(n int) []string {
	d := make([]string, n)
	for i := range d {
		d[i] = freshDir()
	}
	return d
}

func removeAll(d []string) {
	for _, x := range d {
		os.RemoveAll(x)
	}
}

// pairsPerOp times cfg.ops lock+unlock pairs (or failing tries) of each
// kind in cfg.batches interleaved batches per round; a round's value is
// the median of its batches (ns per operation), NaN for a nil impl.
func pairsPerOp(cfg *config, ims []impl, op func(impl)) perRound {
	v := newPerRound(len(ims), cfg.rounds)
	for r := range cfg.rounds {
		per := make([][]float64, len(ims))
		for b := range cfg.batches {
			for j := range ims {
				k := (j + b + r) % len(ims)
				if ims[k] == nil {
					per[k] = append(per[k], math.NaN())
					continue
				}
				start := time.Now()
				for range cfg.ops {
					op(ims[k])
				}
				per[k] = append(per[k], float64(time.Since(start).Nanoseconds())/float64(cfg.ops))
			}
		}
		for k := range ims {
			v[k][r] = median(per[k])
		}
	}
	return v
}

func uncontended(cfg *config, st *suite, rep *report) {
	d := dirs(len(st.lock))
	defer removeAll(d)
	ims := make([]impl, len(st.lock))
	for k, kind := range st.lock {
		ims[k] = newImpl(kind, d[k])
	}
	v := pairsPerOp(cfg, ims, func(im impl) {
		check(im.lock(bg))
		check(im.unlock())
	})
	rep.row("uncontended Acquire+Release (ns)", v, "%.0f", "uncontended", "≤ 2×")
}

// busy: failing tries while an agentlock process holds the lock (so a
// holder record exists; gofrs/flock and the raw lock do not read it).
func busy(cfg *config, st *suite, rep *report) {
	dir := freshDir()
	defer os.RemoveAll(dir)
	holder := startChild(st.lock[len(st.lock)-1], dir)
	defer holder.close()
	holder.send("lock")
	holder.expect("locked")
	ims := make([]impl, len(st.lock))
	for k, kind := range st.lock {
		if st.omit["busy/"+kind] == "" {
			ims[k] = newImpl(kind, dir)
		}
	}
	v := pairsPerOp(cfg, ims, func(im impl) {
		ok, err := im.try()
		check(err)
		if ok {
			check(errors.New("try succeeded on a held lock"))
		}
	})
	rep.row("TryAcquire on a busy lock, with holder (ns)", v, "%.0f", "busy", "≤ 2×")
}

// A waiter is a child process of one kind waiting for the lock that
// this process holds through the same kind, in its own directory.
type waiter struct {
	holder impl
	child  *proc
}

func waiters(kinds, d []string) []waiter {
	w := make([]waiter, len(kinds))
	for k, kind := range kinds {
		w[k] = waiter{newImpl(kind, d[k]), startChild(kind, d[k])}
	}
	return w
}

// handoffOnce: this process holds, the child starts waiting, and once it
// sleeps in its wait this process keeps the lock for hold more, then
// releases. The latency is from just before the release to the child's
// acquisition (wall clock, across processes).
func (w waiter) handoffOnce(hold time.Duration) (d time.Duration, asleep bool) {
	check(w.holder.lock(bg))
	w.child.send("lockat")
	w.child.expect("waiting")
	asleep = waitAsleep(w.child.pid(), time.Second)
	time.Sleep(hold)
	t0 := stamp()
	check(w.holder.unlock())
	return time.Duration(w.child.int() - t0), asleep
}

// jitter returns hold plus a random part of up to a fifth of it: a
// holder's release does not fall at a fixed phase of a waiter's
// timeouts (a wait's safety-net timeout that happened to end just
// before every release would find the waiter awake and warm). A fifth
// keeps the default holds clear of agentlock's timeouts on Linux, which
// end 250, 750, 1750 and 2750 ms into a wait.
func jitter(hold time.Duration) time.Duration {
	return hold + rand.N(hold/5+1)
}

// samplesFor is the number of hand-offs per kind per round at a hold
// time: many for short holds, a few for the longest; odd, so that a
// round's median is one of its samples.
func samplesFor(cfg *config, hold time.Duration) int {
	return max(cfg.minSamples, min(cfg.maxSamples, int(cfg.handoffBudget/hold))) | 1
}

func handoff(cfg *config, st *suite, rep *report) {
	d := dirs(len(st.lock))
	defer removeAll(d)
	ws := waiters(st.lock, d)
	defer func() {
		for _, w := range ws {
			w.child.close()
		}
	}()
	for _, hold := range cfg.holds {
		n := samplesFor(cfg, hold)
		all := make([][]time.Duration, len(ws))
		p50 := newPerRound(len(ws), cfg.rounds)
		missed := 0
		for r := range cfg.rounds {
			per := make([][]time.Duration, len(ws))
			for s := range n {
				h := jitter(hold)
				for j := range ws {
					k := (j + s + r) % len(ws)
					x, asleep := ws[k].handoffOnce(h)
					if !asleep {
						missed++
					}
					per[k] = append(per[k], x)
				}
			}
			for k := range ws {
				p50[k][r] = medianDur(per[k])
				all[k] = append(all[k], per[k]...)
			}
		}
		rep.handoff(hold, n, p50, all, missed)
	}
}

// waiterCPU: the kinds' waiters wait at the same time, each for its own
// lock, for cfg.cpuHold; a round's value is the CPU each used while
// waiting, in % of a core.
func waiterCPU(cfg *config, st *suite, rep *report) {
	d := dirs(len(st.cpu))
	defer removeAll(d)
	ws := waiters(st.cpu, d)
	v := newPerRound(len(ws), cfg.rounds)
	for r := range cfg.rounds {
		for _, w := range ws {
			check(w.holder.lock(bg))
			w.child.send("cpu")
			w.child.expect("waiting")
		}
		time.Sleep(cfg.cpuHold)
		for _, w := range ws {
			check(w.holder.unlock())
		}
		for k, w := range ws {
			f := strings.Fields(w.child.line())
			cpu, _ := strconv.ParseFloat(f[0], 64)
			wall, _ := strconv.ParseFloat(f[1], 64)
			v[k][r] = 100 * cpu / wall
		}
	}
	for _, w := range ws {
		w.child.close()
	}
	rep.cpu(cfg.cpuHold, v)
}

// cancel: a child waits with a 50 ms timeout while this process holds;
// this process then releases and for 100 ms checks with the raw lock
// that nobody holds the lock (a phantom hold would show up as busy).
func cancel(cfg *config, st *suite, rep *report) {
	d := dirs(len(st.cancel))
	defer removeAll(d)
	ws := waiters(st.cancel, d)
	probes := make([]impl, len(ws))
	for k, kind := range st.cancel {
		// The kind's own lock first: agentlock refuses a named mutex
		// that a raw probe created (see newProbe).
		check(ws[k].holder.lock(bg))
		check(ws[k].holder.unlock())
		probes[k] = newProbe(kind, d[k])
	}
	late := make([][]time.Duration, len(ws))
	phantoms := make([]int, len(ws))
	for r := range cfg.rounds {
		for s := range cfg.cancels {
			for j := range ws {
				k := (j + s + r) % len(ws)
				l, ph := ws[k].cancelOnce(probes[k])
				late[k] = append(late[k], l)
				if ph {
					phantoms[k]++
				}
			}
		}
	}
	for _, w := range ws {
		w.child.close()
	}
	rep.cancel(late, phantoms)
}

func (w waiter) cancelOnce(probe impl) (late time.Duration, phantom bool) {
	check(w.holder.lock(bg))
	w.child.send("cancel 50ms")
	w.child.expect("waiting")
	l := w.child.line()
	if l == "locked" {
		check(errors.New("cancelled wait returned the lock"))
	}
	n, err := strconv.ParseInt(l, 10, 64)
	check(err)
	check(w.holder.unlock())
	for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); time.Sleep(200 * time.Microsecond) {
		ok, err := probe.try()
		check(err)
		if !ok {
			return time.Duration(n), true
		}
		check(probe.unlock())
	}
	return time.Duration(n), false
}

// throughput: cfg.procs processes of one kind lock and unlock in a loop,
// starting together. A round gives each kind cfg.loop of this in
// cfg.slices slices, and the kinds take turns slice by slice (raw,
// gofrs, agentlock, raw, ...; which kind goes first rotates with the
// round), so that a change in the shared machine's load over the round
// hits every kind alike. A round gives each kind's acquisitions per
// second over its slices, and its spread: the most acquisitions of one
// process over the fewest within a slice, the worst slice of the round
// (+Inf if a process starved). A spread within a slice bounds the
// spread over the whole round: no process can fall further behind over
// the round than it did in its worst slice.
func throughput(cfg *config, st *suite, rep *report) {
	d := dirs(len(st.lock))
	defer removeAll(d)
	ps := make([][]*proc, len(st.lock))
	for k, kind := range st.lock {
		for range cfg.procs {
			ps[k] = append(ps[k], startChild(kind, d[k]))
		}
	}
	rate := newPerRound(len(ps), cfg.rounds)
	spread := newPerRound(len(ps), cfg.rounds)
	slice := cfg.loop / time.Duration(cfg.slices)
	total := (slice * time.Duration(cfg.slices)).Seconds() // cfg.loop, to the nanosecond
	for r := range cfg.rounds {
		for s := range cfg.slices {
			for j := range ps {
				k := (j + r) % len(ps)
				counts := loopSlice(ps[k], slice)
				for _, c := range counts {
					rate[k][r] += c / total
				}
				sp := slices.Max(counts) / slices.Min(counts)
				if slices.Min(counts) == 0 {
					sp = math.Inf(1)
				}
				if s == 0 || sp > spread[k][r] {
					spread[k][r] = sp
				}
			}
		}
	}
	for _, pk := range ps {
		for _, p := range pk {
			p.close()
		}
	}
	rep.throughput(cfg.procs, cfg.loop, cfg.slices, rate, spread)
}

// loopSlice has the processes ps lock and unlock in a loop for d,
// starting together, and returns each one's count of acquisitions.
func loopSlice(ps []*proc, d time.Duration) []float64 {
	start := time.Now().Add(50 * time.Millisecond)
	cmd := fmt.Sprintf("loop %d %d", start.UnixNano(), start.Add(d).UnixNano())
	for _, p := range ps {
		p.send(cmd)
	}
	counts := make([]float64, len(ps))
	for i, p := range ps {
		counts[i] = float64(p.int())
	}
	return counts
}
