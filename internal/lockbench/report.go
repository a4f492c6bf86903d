//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// A report prints the table as the figures come in, and the per-round
// ratios behind it at the end.
type report struct {
	rounds  int
	details []string
}

func (r *report) header() {
	fmt.Printf("| figure | raw flock | gofrs/flock | agentlock | agentlock ÷ raw per round: median (min–max) | target |\n")
	fmt.Printf("|---|---|---|---|---|---|\n")
}

func (r *report) footer() {
	if len(r.details) == 0 {
		return
	}
	fmt.Printf("\nPer round (%d rounds), agentlock ÷ raw unless stated:\n\n", r.rounds)
	for _, d := range r.details {
		fmt.Println("   ", d)
	}
}

func (r *report) detail(format string, a ...any) {
	r.details = append(r.details, fmt.Sprintf(format, a...))
}

// row: the median over rounds of each kind's value (kinds raw, gofrs,
// agentlock), and the per-round ratios.
func (r *report) row(name string, v perRound, f, note, target string) {
	if note != "" {
		note = ", " + note
	}
	fmt.Printf("| %s | "+f+" | "+f+" (%.2f×%s) | "+f+" | %s | %s |\n",
		name, median(v[0]), median(v[1]), median(v.ratios(1)), note, median(v[2]), spanned(v.ratios(2)), target)
	r.detail("%s: %s", name, list(v.ratios(2)))
}

// handoff: p50 and p99 over all the samples of each kind; the ratio
// column is taken from each round's p50s (p99 from all samples: a
// round has too few for its own).
func (r *report) handoff(hold time.Duration, n int, p50 perRound, all [][]time.Duration, missed int) {
	total := len(all[0])
	q := func(k int, p float64) float64 { return us(pct(all[k], p)) }
	fmt.Printf("| hand-off p50, hold %v (µs; %d×%d per kind) | %.1f | blocking Lock: %.1f (%.2f×) | %.1f | %s | ≤ 1.5× |\n",
		hold, r.rounds, n, q(0, .5), q(1, .5), median(p50.ratios(1)), q(2, .5), spanned(p50.ratios(2)))
	fmt.Printf("| hand-off p99, hold %v (µs, of %d) | %.1f | %.1f | %.1f | %.2f× (all samples) | |\n",
		hold, total, q(0, .99), q(1, .99), q(2, .99), q(2, .99)/q(0, .99))
	r.detail("hand-off p50, hold %v: %s (gofrs blocking Lock ÷ raw: %s)", hold, list(p50.ratios(2)), list(p50.ratios(1)))
	if missed > 0 {
		r.detail("hand-off, hold %v: in %d of %d hand-offs the waiter was not seen asleep before the hold began", hold, missed, 3*total)
	}
}

func (r *report) cpu(hold time.Duration, v perRound) {
	c := func(k int) string { return fmt.Sprintf("%.3f (%.3f)", median(v[k]), slices.Max(v[k])) }
	fmt.Printf("| CPU of a waiter blocked %v, %% of a core: median (max) | %s | 1 ms poll: %s | **%s** | | ≤ 0.2 %% |\n",
		hold, c(0), c(1), c(2))
	r.detail("waiter CPU, agentlock, %% of a core: %s", list(v[2]))
}

func (r *report) cancel(late [][]time.Duration, phantoms []int) {
	c := func(k int) string {
		return fmt.Sprintf("%.2f / %.2f; %d of %d", ms(pct(late[k], .5)), ms(slices.Max(late[k])), phantoms[k], len(late[k]))
	}
	fmt.Printf("| cancel: return after ctx ends, p50 / max (ms); phantom holds | blocking flock in a goroutine: %s | 10 ms poll: %s | **%s** | | ≤ 10 ms, none |\n",
		c(0), c(1), c(2))
}

func (r *report) throughput(procs int, loop time.Duration, rate, spread perRound) {
	fmt.Printf("| %d processes contending, %v per round (acquisitions/s) | %.0f | %.0f (%.2f×) | %.0f | %s | ≥ 0.8× every round |\n",
		procs, loop, median(rate[0]), median(rate[1]), median(rate.ratios(1)), median(rate[2]), spanned(rate.ratios(2)))
	s := func(k int) string { return fmt.Sprintf("%.2f (%s)", median(spread[k]), maxSpread(spread[k])) }
	fmt.Printf("| — spread: most ÷ fewest acquisitions of one process, median (worst) | %s | %s | **%s** | | ≤ 3× |\n",
		s(0), s(1), s(2))
	r.detail("%d processes contending: %s", procs, list(rate.ratios(2)))
	r.detail("spread, raw flock: %s", list(spread[0]))
	r.detail("spread, agentlock: %s", list(spread[2]))
}

func maxSpread(v []float64) string {
	m := slices.Max(v)
	if math.IsInf(m, 1) {
		return "a process starved"
	}
	return fmt.Sprintf("%.2f", m)
}
