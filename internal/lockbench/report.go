//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd || windows

package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// A report prints a suite's table as the figures come in, and the
// per-round ratios behind it at the end. The first column is the
// baseline, the last agentlock; the middle ones (if any) get the labels
// of their kind and their ratio to the baseline.
type report struct {
	rounds  int
	s       *suite
	details []string
}

func (r *report) header() {
	fmt.Printf("| figure | %s | agentlock ÷ raw per round: median (min–max) | target |\n", strings.Join(r.s.columns, " | "))
	fmt.Printf("|---|%s---|---|\n", strings.Repeat("---|", len(r.s.columns)))
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

// line prints a table row: the figure, the cells and the rest.
func line(name string, cells []string, rest ...string) {
	var b strings.Builder
	b.WriteString("|")
	for _, c := range append(append([]string{name}, cells...), rest...) {
		if c != "" {
			b.WriteString(" " + c)
		}
		b.WriteString(" |")
	}
	fmt.Println(b.String())
}

// cells formats one cell per kind: first for the baseline, mid for the
// kinds between (with the kind's label for the figure fig), last for
// agentlock.
func cells(kinds []string, fig string, first, mid, last func(k int) string) []string {
	c := []string{first(0)}
	for k := 1; k < len(kinds)-1; k++ {
		c = append(c, labels[fig+"/"+kinds[k]]+mid(k))
	}
	return append(c, last(len(kinds)-1))
}

// row: the median over rounds of each kind's value, and the per-round
// ratios (fig names the figure for the labels).
func (r *report) row(name string, v perRound, f, fig, target string) {
	kinds, a := r.s.lock, len(v)-1
	val := func(k int) string { return fmt.Sprintf(f, median(v[k])) }
	mid := func(k int) string {
		if why := r.s.omit[fig+"/"+kinds[k]]; why != "" {
			r.detail("%s, %s: not measured: %s", name, r.s.columns[k], why)
			return "—"
		}
		note := labels[fig+"/"+kinds[k]]
		if note != "" {
			note = ", " + note
		}
		return fmt.Sprintf(f+" (%.2f×%s)", median(v[k]), median(v.ratios(k)), note)
	}
	line(name, cells(kinds, "", val, mid, val), spanned(v.ratios(a)), target)
	r.detail("%s: %s", name, list(v.ratios(a)))
}

// holdRange names the hold times of a hand-off row (see jitter).
func holdRange(hold time.Duration) string { return fmt.Sprintf("%v–%v", hold, hold+hold/5) }

// handoff: p50 and p99 over all the samples of each kind; the ratio
// column is taken from each round's p50s (p99 from all samples: a
// round has too few for its own).
func (r *report) handoff(hold time.Duration, n int, p50 perRound, all [][]time.Duration, missed int) {
	kinds, a, total := r.s.lock, len(all)-1, len(all[0])
	q := func(k int, p float64) float64 { return us(pct(all[k], p)) }
	p := func(k int) string { return fmt.Sprintf("%.1f", q(k, .5)) }
	line(fmt.Sprintf("hand-off p50, hold %v (µs; %d×%d per kind)", holdRange(hold), r.rounds, n),
		cells(kinds, "handoff", p, func(k int) string { return fmt.Sprintf("%.1f (%.2f×)", q(k, .5), median(p50.ratios(k))) }, p),
		spanned(p50.ratios(a)), "≤ 1.5×")
	p = func(k int) string { return fmt.Sprintf("%.1f", q(k, .99)) }
	line(fmt.Sprintf("hand-off p99, hold %v (µs, of %d)", holdRange(hold), total),
		cells(kinds, "", p, p, p), fmt.Sprintf("%.2f× (all samples)", q(a, .99)/q(0, .99)), "")
	mids := ""
	for k := 1; k < a; k++ {
		mids += fmt.Sprintf(" (%s %s ÷ raw: %s)", kinds[k], strings.TrimSuffix(labels["handoff/"+kinds[k]], ": "), list(p50.ratios(k)))
	}
	r.detail("hand-off p50, hold %v: %s%s", holdRange(hold), list(p50.ratios(a)), mids)
	if missed > 0 && asleepMethod == "" {
		r.detail("hand-off, hold %v: in %d of %d hand-offs the waiter was not seen asleep before the hold began", holdRange(hold), missed, len(kinds)*total)
	}
}

func (r *report) cpu(hold time.Duration, v perRound) {
	c := func(k int) string { return fmt.Sprintf("%.3f (%.3f)", median(v[k]), slices.Max(v[k])) }
	bold := func(k int) string { return "**" + c(k) + "**" }
	line(fmt.Sprintf("CPU of a waiter blocked %v, %% of a core: median (max)", hold),
		cells(r.s.cpu, "cpu", c, c, bold), "", "≤ 0.2 %")
	r.detail("waiter CPU, agentlock, %% of a core: %s", list(v[len(v)-1]))
	if m := cpuMethod(); m != "" {
		r.detail("waiter CPU measured as %s", m)
	}
}

func (r *report) cancel(late [][]time.Duration, phantoms []int) {
	c := func(k int) string {
		return fmt.Sprintf("%.2f / %.2f; %d of %d", ms(pct(late[k], .5)), ms(slices.Max(late[k])), phantoms[k], len(late[k]))
	}
	first := func(k int) string { return labels["cancel/"+r.s.cancel[k]] + c(k) }
	bold := func(k int) string { return "**" + c(k) + "**" }
	line("cancel: return after ctx ends, p50 / max (ms); phantom holds",
		cells(r.s.cancel, "cancel", first, c, bold), "", "≤ 10 ms, none")
}

func (r *report) throughput(procs int, loop time.Duration, parts int, rate, spread perRound) {
	kinds, a := r.s.lock, len(rate)-1
	val := func(k int) string { return fmt.Sprintf("%.0f", median(rate[k])) }
	mid := func(k int) string { return fmt.Sprintf("%.0f (%.2f×)", median(rate[k]), median(rate.ratios(k))) }
	slice := loop / time.Duration(parts)
	line(fmt.Sprintf("%d processes contending, %v per round and kind in %d slices of %v, the kinds taking turns (acquisitions/s)", procs, loop, parts, slice),
		cells(kinds, "", val, mid, val), spanned(rate.ratios(a)), "≥ 0.8× every round")
	s := func(k int) string { return fmt.Sprintf("%.2f (%s)", median(spread[k]), maxSpread(spread[k])) }
	bold := func(k int) string { return "**" + s(k) + "**" }
	line(fmt.Sprintf("— spread: most ÷ fewest acquisitions of one process in a %v slice, each round's worst slice: median (worst)", slice),
		cells(kinds, "", s, s, bold), "", "≤ 3×")
	r.detail("%d processes contending: %s", procs, list(rate.ratios(a)))
	r.detail("spread, %s: %s", r.s.columns[0], list(spread[0]))
	r.detail("spread, %s: %s", r.s.columns[a], list(spread[a]))
}

func maxSpread(v []float64) string {
	m := slices.Max(v)
	if math.IsInf(m, 1) {
		return "a process starved"
	}
	return fmt.Sprintf("%.2f", m)
}
