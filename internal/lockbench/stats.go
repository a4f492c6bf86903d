//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd || windows

package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// perRound holds a figure's value in each round for each kind, in the
// order of the figure's kinds (the first is the baseline).
type perRound [][]float64

func newPerRound(kinds, rounds int) perRound {
	v := make(perRound, kinds)
	for k := range v {
		v[k] = make([]float64, rounds)
	}
	return v
}

// ratios are kind k's per-round values over the baseline's in the same
// round.
func (v perRound) ratios(k int) []float64 {
	r := make([]float64, len(v[k]))
	for i := range r {
		r[i] = v[k][i] / v[0][i]
	}
	return r
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// pct is the p-quantile (nearest rank) of d.
func pct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(float64(len(s))*p)) - 1
	return s[max(0, min(len(s)-1, i))]
}

func medianDur(d []time.Duration) float64 {
	f := make([]float64, len(d))
	for i, x := range d {
		f[i] = float64(x)
	}
	return median(f)
}

// spanned formats per-round ratios as "median× (min–max)".
func spanned(r []float64) string {
	return fmt.Sprintf("**%.2f×** (%.2f–%.2f)", median(r), slices.Min(r), slices.Max(r))
}

// list formats per-round values for the detail lines.
func list(r []float64) string {
	s := make([]string, len(r))
	for i, x := range r {
		s[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(s, " ")
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
