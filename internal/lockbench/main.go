//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd || windows

// Command lockbench measures agentlock's file backend across processes
// against the raw flock(2) system call and github.com/gofrs/flock, in
// one run on one machine, and prints each figure as the ratio to raw
// flock measured in the same rounds (see BENCHMARKS.md). On Windows it
// makes two tables: the file backend against raw LockFileEx and
// gofrs/flock, and the named-mutex backend against a raw named mutex.
//
//	go run ./internal/lockbench [-quick] [-rounds N] [-only figures] [-holds list]
//
// Every figure runs in rounds (5 by default); inside a round the
// implementations take turns, so that the shared machine's changing
// load hits them alike, and the table gives the median and the min–max
// of the per-round ratios. It re-executes itself for the child
// processes it needs.
//
// stages.patch, applied to a copy of the repository (git apply
// internal/lockbench/stages.patch), stamps each step of agentlock's
// hand-offs on Linux and makes the hand-off figure print their medians
// (BENCHMARKS.md has a table made with it); the library never carries
// the stamps. CI checks that it still applies and builds.
package main

import (
	"flag"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"
)

type config struct {
	rounds       int
	ops, batches int // uncontended and busy: operations per batch, batches per round and kind
	holds        []time.Duration
	// Hand-offs per round and kind: handoffBudget/hold, within
	// [minSamples, maxSamples].
	handoffBudget          time.Duration
	minSamples, maxSamples int
	cpuHold                time.Duration
	cancels                int // per round and kind
	procs                  int
	loop                   time.Duration // per round and kind, in slices
	slices                 int
}

var figures = []struct {
	name string
	run  func(*config, *suite, *report)
}{
	{"uncontended", uncontended},
	{"busy", busy},
	{"handoff", handoff},
	{"cpu", waiterCPU},
	{"cancel", cancel},
	{"throughput", throughput},
}

func main() {
	kind := flag.String("child", "", "run as a child with this implementation")
	dir := flag.String("dir", "", "lock directory (child)")
	quick := flag.Bool("quick", false, "a smoke run of a few seconds: fewer rounds and samples, no 2 s hold (not for BENCHMARKS.md)")
	rounds := flag.Int("rounds", 0, "rounds per figure (default 5, 3 with -quick)")
	only := flag.String("only", "", "measure only these figures (comma separated: uncontended,busy,handoff,cpu,cancel,throughput)")
	holds := flag.String("holds", "", "hand-off hold times (comma separated; default 1ms,20ms,200ms,2s; 1ms,20ms,200ms with -quick)")
	flag.Parse()
	if *kind != "" {
		child(*kind, *dir)
		return
	}
	cfg := newConfig(*quick, *rounds, *holds)
	run(cfg, func(f string) bool { return *only == "" || slices.Contains(strings.Split(*only, ","), f) })
}

// newConfig is the configuration the flags select.
func newConfig(quick bool, rounds int, holds string) *config {
	cfg := &config{
		rounds: 5, ops: batchOps, batches: 20,
		holds:         []time.Duration{time.Millisecond, 20 * time.Millisecond, 200 * time.Millisecond, 2 * time.Second},
		handoffBudget: 4 * time.Second, minSamples: 7, maxSamples: 100,
		cpuHold: cpuHold, cancels: 6, procs: 8, loop: 2 * time.Second, slices: 4,
	}
	if quick {
		*cfg = config{
			rounds: 3, ops: quickBatchOps, batches: 4,
			holds:         cfg.holds[:3],
			handoffBudget: 160 * time.Millisecond, minSamples: 1, maxSamples: 10,
			cpuHold: 300 * time.Millisecond, cancels: 2, procs: 8, loop: 300 * time.Millisecond, slices: 2,
		}
	}
	if rounds > 0 {
		cfg.rounds = rounds
	}
	if holds != "" {
		cfg.holds = nil
		for _, s := range strings.Split(holds, ",") {
			d, err := time.ParseDuration(s)
			if err == nil && d <= 0 {
				err = fmt.Errorf("hold %v is not positive", d)
			}
			check(err)
			cfg.holds = append(cfg.holds, d)
		}
	}
	return cfg
}

// run measures the figures want selects, suite by suite, and prints
// their tables.
func run(cfg *config, want func(figure string) bool) {
	start := time.Now()
	fmt.Printf("lockbench: %s/%s%s, %d CPUs, %s, %s, %d rounds%s\n\n", runtime.GOOS, runtime.GOARCH, system(), runtime.NumCPU(), runtime.Version(), start.UTC().Format(time.RFC3339), cfg.rounds, loadavg())
	if asleepMethod != "" && want("handoff") {
		fmt.Printf("Hand-off: %s.\n\n", asleepMethod)
	}
	for i := range suites {
		s := &suites[i]
		if s.title != "" {
			fmt.Printf("%s\n\n", s.title)
		}
		rep := &report{rounds: cfg.rounds, s: s}
		rep.header()
		for _, f := range figures {
			if want(f.name) {
				f.run(cfg, s, rep)
			}
		}
		rep.footer()
		if i < len(suites)-1 {
			fmt.Println()
		}
	}
	fmt.Printf("\n(took %v%s)\n", time.Since(start).Round(time.Second), loadavg())
}
