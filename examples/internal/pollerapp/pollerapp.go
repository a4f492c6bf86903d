// Package pollerapp is the foreground poller of the examples: the
// program behind examples/poller, and the poller role of
// examples/demo.
//
// It does three things, each showing one part of the library:
//
//   - every interval it reads the instruction file without the lock
//     (guarded.File.Read needs no lease and never sees a torn file) and
//     shows what is pending, installing and done when that changes;
//   - it runs a watch-only poll.Poller on the lock the installer holds:
//     it reads the holder's record and never takes the lock, so the
//     installer never finds the lock busy because of it, and the
//     installer, not the poller, gets the Abandoned lease after a
//     crash. When the lock is busy the Poller builds an event (holder,
//     purpose, how long the holder has been busy) and the notification
//     policy decides whether the user sees "A package is currently
//     being installed in the background: ...". The policy comes from
//     -notify, else $AGENTLOCK_NOTIFY (poll.PolicyFromEnv), else
//     poll.DefaultPolicy;
//   - when the lock is free, it looks for packages the file says are
//     "installing": the installer marks a package done before it
//     releases the lock, so a package still marked installing while
//     nobody holds the lock was interrupted (its installer died), and
//     the user is told it will be installed again.
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
	"github.com/agentlock/agentlock/lock/guarded"
	"github.com/agentlock/agentlock/poll"
)

// Events the poller reports (report.Event.Event).
const (
	EvStart       = "start"
	EvStatus      = "status"      // the instruction file changed: Pending, Running, Done
	EvBusy        = "busy"        // the busy message was shown: Holder, Purpose, BusyMS, Package
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
	c, err := lock.New(cfg.LockName, opts...)
	if err != nil {
		return err
	}
	g, err := guarded.Open(cfg.File, guarded.By(c))
	if err != nil {
		return err
	}
	out.Emit(report.Event{Event: EvStart, Msg: fmt.Sprintf("poller started (every %v, notification policy %v)", cfg.Interval, cfg.Policy)})
	defer out.Emit(report.Event{Event: EvStop, Msg: "poller stopped"})

	a := &app{c: c, g: g, out: out, reported: map[string]bool{}}
	var wg sync.WaitGroup
	wg.Go(func() { a.watch(ctx, cfg.Interval) })
	defer wg.Wait()

	p, err := poll.New(c, nil, // watch only: the poller never takes the lock
		poll.WithInterval(cfg.Interval),
		poll.OnFree(func() { a.free(ctx) }),
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
	c   *lock.Coordinator
	g   *guarded.File
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

// free runs when the Poller found the lock free. A package marked
// installing is reported as interrupted only if the file read before
// and after a second look at the lock is the same and nobody held the
// lock at that look: then the package was marked installing by a holder
// that is gone without marking it done.
func (a *app) free(ctx context.Context) {
	before, err := a.read()
	if err != nil {
		a.out.Emit(report.Event{Event: EvError, Error: err.Error(), Msg: "poll: " + err.Error()})
		return
	}
	if _, err := a.c.Holder(ctx); !errors.Is(err, lock.ErrNotHeld) {
		return // held again (or unreadable): the next look decides
	}
	f, err := a.read()
	if err != nil || !f.Equal(&before) {
		return
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
}

// busy shows the classic message for an event the policy let through.
// It says how long the holder has been busy (Event.Busy), not how long
// this poller has been looking (Event.Waited): a poller started in the
// middle of an install still says how long the install has run.
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
