// Package pollerapp is the foreground poller of the examples: the
// program behind examples/poller, and the poller role of
// examples/demo.
//
// It does three things, each showing one part of the library:
//
//   - every interval it reads the instruction file without the lock
//     (lock.Guarded.Read needs no lease and never sees a torn file) and
//     shows what is pending, installing and done when that changes;
//   - it runs a poll.Poller on the lock the installer holds. When the
//     lock is busy the Poller builds an event (holder, purpose, how
//     long) and the notification policy decides whether the user sees
//     "A package is currently being installed in the background: ...".
//     The policy comes from -notify, else $AGENTLOCK_NOTIFY
//     (poll.PolicyFromEnv), else poll.DefaultPolicy;
//   - when the lock is free, the Poller's work function runs under the
//     lease and looks for packages the file says are "installing": with
//     the lock in hand nobody can be installing, so such a package was
//     interrupted (its installer died), and the user is told it will be
//     installed again.
package pollerapp

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/agentlock/agentlock/examples/internal/instr"
	"github.com/agentlock/agentlock/examples/internal/report"
	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/poll"
)

// Events the poller reports (report.Event.Event).
const (
	EvStart       = "start"
	EvStatus      = "status"      // the instruction file changed: Pending, Running, Done
	EvBusy        = "busy"        // the busy message was shown: Holder, Purpose, BusyMS, Package
	EvAbandoned   = "abandoned"   // the poller's lease found the previous holder dead
	EvInterrupted = "interrupted" // Package is marked installing but nobody holds the lock
	EvError       = "error"
	EvStop        = "stop"
)

// Config is what the flags set.
type Config struct {
	File     string
	LockDir  string
	LockName string
	Interval time.Duration
	Policy   poll.Policy
}

// Run shows the instruction file and the busy message until ctx ends.
func Run(ctx context.Context, cfg Config, out *report.Printer) error {
	var opts []lock.Option
	if cfg.LockDir != "" {
		opts = append(opts, lock.WithDir(cfg.LockDir))
	}
	// What the poller says while it holds the lock (briefly, to look
	// for interrupted installs).
	opts = append(opts, lock.WithPurpose("checking for interrupted installs"))
	c, err := lock.New(cfg.LockName, opts...)
	if err != nil {
		return err
	}
	g, err := lock.OpenGuarded(cfg.File, lock.GuardedBy(c))
	if err != nil {
		return err
	}
	out.Emit(report.Event{Event: EvStart, Msg: fmt.Sprintf("poller started (every %v, notification policy %v)", cfg.Interval, cfg.Policy)})
	defer out.Emit(report.Event{Event: EvStop, Msg: "poller stopped"})

	a := &app{g: g, out: out, reported: map[string]bool{}}
	var wg sync.WaitGroup
	wg.Go(func() { a.watch(ctx, cfg.Interval) })
	defer wg.Wait()

	p, err := poll.New(c, a.work,
		poll.WithInterval(cfg.Interval),
		poll.WithImmediateStart(),
		poll.WithPolicy(cfg.Policy),
		poll.OnBusy(a.busy),
		poll.OnError(func(err error) {
			out.Emit(report.Event{Event: EvError, Error: err.Error(), Msg: "poll: " + err.Error()})
		}),
	)
	if err != nil {
		return err
	}
	if err := p.Run(ctx); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

type app struct {
	g   *lock.Guarded
	out *report.Printer

	mu       sync.Mutex
	last     *instr.File
	lastErr  string
	reported map[string]bool // interrupted installs already reported: name/pid
}

// watch shows the instruction file whenever it changes. It reads
// without the lock: a guarded file is replaced atomically, so a read
// sees one complete version, even while the installer writes.
func (a *app) watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		a.show()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *app) show() {
	f, err := a.read()
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		if err.Error() != a.lastErr {
			a.lastErr = err.Error()
			a.out.Emit(report.Event{Event: EvError, Error: err.Error(), Msg: "reading the instruction file: " + err.Error()})
		}
		return
	}
	a.lastErr = ""
	if a.last != nil && a.last.Equal(&f) {
		return
	}
	a.last = &f
	pending, running, done := f.Names(instr.Queued), f.Names(instr.Installing), f.Names(instr.Done)
	var msg string
	if len(f.Packages) == 0 {
		msg = "no instructions yet"
	} else {
		msg = fmt.Sprintf("pending: %s | installing: %s | done: %s", report.List(pending), report.List(running), report.List(done))
	}
	a.out.Emit(report.Event{Event: EvStatus, Pending: pending, Running: running, Done: done, Msg: msg})
}

// read reads the file; a missing file is an empty one.
func (a *app) read() (instr.File, error) {
	b, err := a.g.Read()
	if errors.Is(err, fs.ErrNotExist) {
		return instr.File{}, nil
	}
	if err != nil {
		return instr.File{}, err
	}
	return instr.Decode(b)
}

// work runs under the lease, when nobody else holds the lock.
func (a *app) work(ctx context.Context, lease *lock.Lease) error {
	if lease.Abandoned() {
		a.out.Emit(report.Event{Event: EvAbandoned, Abandoned: true, Locked: true,
			Msg: "the previous holder of the lock died holding it"})
	}
	f, err := a.read()
	if err != nil {
		return err
	}
	for _, p := range f.Packages {
		if p.State != instr.Installing {
			continue
		}
		key := fmt.Sprintf("%s/%d", p.Name, p.PID)
		a.mu.Lock()
		seen := a.reported[key]
		a.reported[key] = true
		a.mu.Unlock()
		if !seen {
			a.out.Emit(report.Event{Event: EvInterrupted, Package: p.Name, Holder: p.PID,
				Msg: fmt.Sprintf("%s was being installed by pid %d, which stopped: it will be installed again at the next run", p.Name, p.PID)})
		}
	}
	return nil
}

// busy shows the classic message for an event the policy let through.
func (a *app) busy(e poll.Event) {
	h := e.Holder
	ev := report.Event{Event: EvBusy, Holder: h.PID, Purpose: h.Purpose, BusyMS: e.Busy.Milliseconds()}
	who := fmt.Sprintf("by pid %d, for %s", h.PID, report.Seconds(e.Busy))
	if h.PID == 0 {
		who = "for " + report.Seconds(e.Busy)
	}
	if pkg, ok := strings.CutPrefix(h.Purpose, "installing "); ok {
		ev.Package = pkg
		ev.Msg = fmt.Sprintf("A package is currently being installed in the background: %s, %s", pkg, who)
	} else {
		// The classic message, shown for a holder that is not
		// installing: what the 1990s poller did. The policy decides.
		ev.Msg = fmt.Sprintf("A package is currently being installed in the background, please wait (%s; the holder says %q)", who, h.Purpose)
	}
	a.out.Emit(ev)
}
