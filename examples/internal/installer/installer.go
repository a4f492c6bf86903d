// Package installer is the background installer of the examples: the
// program behind examples/installer, and the installer role of
// examples/demo.
//
// One run does what a well-behaved background installer does:
//
//  1. validate a logon server (package logon), with the lock still free;
//  2. take the lock with that validation as its precondition
//     (lock.WithPrecondition(v.Check)), so a dead network never holds
//     it, and say what it is doing: "querying <server>";
//  3. read the catalog from the server that was validated
//     (Validation.Server), and record it in the guarded instruction
//     file: new packages queued;
//  4. install each queued package, saying "installing <package>"
//     (Lease.SetPurpose) and recording installing → done in the file;
//  5. release.
//
// With Legacy the order of 1 and 2 is swapped: the lock is taken first
// and the server validated while it is held, the bug of the 1990s agent
// that made the poller say "a package is being installed" while the
// service was waiting on an unreachable server.
//
// When the lease reports Abandoned (the previous installer died holding
// the lock), or the file says a package is "installing" while we hold
// the lock (nobody else can be), that package was interrupted: it is
// queued again and installed from scratch. A package's install count
// rises only in the same atomic write that marks it done, so it is
// never counted twice.
package installer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agentlock/agentlock/examples/internal/instr"
	"github.com/agentlock/agentlock/examples/internal/report"
	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/guarded"
	"github.com/agentlock/agentlock/logon"
)

// Events the installer reports (report.Event.Event).
const (
	EvStart      = "start"
	EvValidating = "validating"        // checking the logon server, lock not held
	EvInvalid    = "validation-failed" // no usable server; Locked says whether the lock was held
	EvLocked     = "locked"            // lock taken; Abandoned, Token
	EvAbandoned  = "abandoned"         // the previous holder died holding the lock
	EvRecovering = "recovering"        // Package was left half-installed by a dead run
	EvQueued     = "queued"            // Package is new in the catalog
	EvIdle       = "idle"              // nothing to install
	EvInstalling = "installing"
	EvInstalled  = "installed"
	EvRequeued   = "requeued" // an install was stopped (Ctrl-C, I/O error) and queued again
	EvReleased   = "released"
	EvError      = "error"
	EvStop       = "stop"
)

// ErrValidation reports a run that found no usable logon server.
var ErrValidation = errors.New("no usable logon server")

// Config is what the flags set.
type Config struct {
	Servers      []string      // HTTP logon servers: base URLs, checked at URL/health
	Shares       []string      // directory shares holding packages.json
	File         string        // the guarded instruction file
	LockDir      string        // "" for the lock package's default
	LockName     string        // the lock shared with the poller
	Target       string        // where packages are installed
	InstallTime  time.Duration // per package
	CheckTimeout time.Duration // per logon server check, and for reading the catalog
	Interval     time.Duration // between runs in service mode
	Once         bool
	Legacy       bool
}

// An Installer runs installs. Make one with New.
type Installer struct {
	cfg    Config
	c      *lock.Coordinator
	g      *guarded.File
	list   *logon.List
	client *http.Client
	out    *report.Printer
}

// New checks cfg and prepares the lock, the guarded file and the
// logon server list. Nothing is locked or probed yet.
func New(cfg Config, out *report.Printer) (*Installer, error) {
	if len(cfg.Servers)+len(cfg.Shares) == 0 {
		return nil, errors.New("no logon server: give -server or -share")
	}
	if cfg.File == "" || cfg.Target == "" {
		return nil, errors.New("-file and -target are required")
	}
	if cfg.InstallTime < 0 || cfg.CheckTimeout <= 0 || cfg.Interval <= 0 {
		return nil, errors.New("durations must be positive")
	}
	var servers []logon.Server
	for _, u := range cfg.Servers {
		u = strings.TrimRight(u, "/")
		check, err := logon.HTTP(u+"/health", logon.WithTimeout(cfg.CheckTimeout))
		if err != nil {
			return nil, err
		}
		servers = append(servers, logon.Server{Name: u, Check: check})
	}
	for _, d := range cfg.Shares {
		check, err := logon.Path(d, logon.WithMarker(instr.CatalogFile), logon.WithTimeout(cfg.CheckTimeout))
		if err != nil {
			return nil, err
		}
		servers = append(servers, logon.Server{Name: d, Check: check})
	}
	// A misconfigured server (a bad URL or share path) was reported
	// above, before anything is locked or probed. No caching: the installer
	// validates once per run, and a cached success could be stale by the
	// time it is used.
	list, err := logon.NewList(servers, logon.WithSuccessTTL(0), logon.WithFailureTTL(0))
	if err != nil {
		return nil, err
	}
	var opts []lock.Option
	if cfg.LockDir != "" {
		opts = append(opts, lock.WithDir(cfg.LockDir))
	}
	c, err := lock.New(cfg.LockName, opts...)
	if err != nil {
		return nil, err
	}
	g, err := guarded.Open(cfg.File, guarded.By(c))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Target, 0o755); err != nil {
		return nil, err
	}
	return &Installer{cfg: cfg, c: c, g: g, list: list, client: &http.Client{}, out: out}, nil
}

func (in *Installer) emit(e report.Event) { in.out.Emit(e) }

// Run runs once (Config.Once) or as a service, one run per interval,
// until ctx ends. In service mode a failed run is reported and retried
// at the next interval, and Run returns nil when ctx ends.
func (in *Installer) Run(ctx context.Context) error {
	order := "validate first, lock second"
	if in.cfg.Legacy {
		order = "LEGACY: lock first, validate second"
	}
	mode := "every " + in.cfg.Interval.String()
	if in.cfg.Once {
		mode = "once"
	}
	in.emit(report.Event{Event: EvStart, Msg: fmt.Sprintf("installer started (%s, %s)", order, mode)})
	defer in.emit(report.Event{Event: EvStop, Msg: "installer stopped"})
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		err := in.RunOnce(ctx)
		if in.cfg.Once {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		t.Reset(in.cfg.Interval)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// RunOnce makes one run: validate, lock, query, install, release (or,
// with Legacy, lock, validate, ...).
func (in *Installer) RunOnce(ctx context.Context) error {
	var (
		lease  *lock.Lease
		server string
		err    error
	)
	if in.cfg.Legacy {
		lease, server, err = in.lockThenValidate(ctx)
	} else {
		lease, server, err = in.validateThenLock(ctx)
	}
	if err != nil {
		return err
	}
	start := time.Now()
	defer func() {
		if rerr := lease.Release(); rerr != nil {
			in.emit(report.Event{Event: EvError, Error: rerr.Error(), Msg: "releasing the lock: " + rerr.Error()})
			return
		}
		in.emit(report.Event{Event: EvReleased, Msg: "released the lock after " + report.Seconds(time.Since(start))})
	}()
	err = in.work(ctx, lease, server)
	if err != nil && ctx.Err() == nil {
		in.emit(report.Event{Event: EvError, Locked: true, Error: err.Error(), Msg: "run failed: " + err.Error()})
	}
	return err
}

// validateThenLock is the fix: the logon server is checked while the
// lock is free, as the acquisition's precondition, and the Validation
// remembers which server passed.
func (in *Installer) validateThenLock(ctx context.Context) (*lock.Lease, string, error) {
	in.emit(report.Event{Event: EvValidating, Msg: "validating the logon server (the lock is not held)"})
	v := in.list.Validation()
	start := time.Now()
	lease, err := in.c.Acquire(ctx, lock.WithPrecondition(v.Check), lock.WithPurpose("querying logon server"))
	if errors.Is(err, lock.ErrPrecondition) {
		in.emit(report.Event{Event: EvInvalid, Error: err.Error(),
			Msg: fmt.Sprintf("no usable logon server after %s; the lock was never taken: %v", report.Seconds(time.Since(start)), cause(err))})
		return nil, "", fmt.Errorf("%w: %v", ErrValidation, err)
	}
	if err != nil {
		if ctx.Err() == nil {
			in.emit(report.Event{Event: EvError, Error: err.Error(), Msg: "taking the lock: " + err.Error()})
		}
		return nil, "", err
	}
	srv, _ := v.Server()
	in.locked(lease, srv.Name)
	return lease, srv.Name, nil
}

// lockThenValidate is the legacy order, kept to show the bug: the lock
// is held while an unreachable server runs out its timeout.
func (in *Installer) lockThenValidate(ctx context.Context) (*lock.Lease, string, error) {
	lease, err := in.c.Acquire(ctx, lock.WithPurpose(purpose("querying ", in.firstServer())))
	if err != nil {
		if ctx.Err() == nil {
			in.emit(report.Event{Event: EvError, Error: err.Error(), Msg: "taking the lock: " + err.Error()})
		}
		return nil, "", err
	}
	in.emit(report.Event{Event: EvLocked, Locked: true, Abandoned: lease.Abandoned(), Token: lease.Token(),
		Msg: "took the lock FIRST (legacy order), now validating the logon server while holding it"})
	v := in.list.Validation()
	start := time.Now()
	if err := v.Check(ctx); err != nil {
		held := time.Since(start)
		lease.Release()
		in.emit(report.Event{Event: EvInvalid, Locked: true, Error: err.Error(),
			Msg: fmt.Sprintf("no usable logon server; the lock was HELD for %s for nothing: %v", report.Seconds(held), err)})
		return nil, "", fmt.Errorf("%w: %v", ErrValidation, err)
	}
	srv, _ := v.Server()
	if err := lease.SetPurpose(purpose("querying ", srv.Name)); err != nil {
		lease.Release()
		return nil, "", err
	}
	return lease, srv.Name, nil
}

func (in *Installer) firstServer() string {
	if len(in.cfg.Servers) > 0 {
		return in.cfg.Servers[0]
	}
	return in.cfg.Shares[0]
}

// locked publishes "querying <server>" and reports the lease.
func (in *Installer) locked(lease *lock.Lease, server string) {
	lease.SetPurpose(purpose("querying ", server))
	in.emit(report.Event{Event: EvLocked, Locked: true, Server: server, Abandoned: lease.Abandoned(), Token: lease.Token(),
		Msg: fmt.Sprintf("logon server %s is usable; took the lock (token %d)", server, lease.Token())})
}

// work runs under the lease: read the catalog, record it, install.
func (in *Installer) work(ctx context.Context, lease *lock.Lease, server string) error {
	cat, err := in.fetchCatalog(ctx, server)
	if err != nil {
		return fmt.Errorf("reading the catalog from %s: %w", server, err)
	}
	if lease.Abandoned() {
		in.emit(report.Event{Event: EvAbandoned, Locked: true, Abandoned: true,
			Msg: "the previous holder of the lock died holding it: checking the instruction file for interrupted installs"})
	}

	var recovered []instr.Package
	var added []string
	var queue []instr.Package
	err = in.update(lease, func(f *instr.File) {
		for i := range f.Packages {
			if p := &f.Packages[i]; p.State == instr.Installing {
				// We hold the lock, so nobody is installing it: a run
				// died in the middle.
				recovered = append(recovered, *p)
				p.State = instr.Queued
			}
		}
		added = f.Merge(cat)
		f.Server = server
		for _, p := range f.Packages {
			if p.State == instr.Queued {
				queue = append(queue, p)
			}
		}
	})
	if err != nil {
		return err
	}
	for _, p := range recovered {
		in.emit(report.Event{Event: EvRecovering, Locked: true, Package: p.Name, Holder: p.PID,
			Msg: fmt.Sprintf("%s was being installed by pid %d when it stopped: it will be installed again (done so far: %d times)", p.Name, p.PID, p.Installs)})
	}
	for _, name := range added {
		in.emit(report.Event{Event: EvQueued, Locked: true, Package: name, Server: server,
			Msg: fmt.Sprintf("queued %s (from %s)", name, server)})
	}
	if len(queue) == 0 {
		in.emit(report.Event{Event: EvIdle, Locked: true, Msg: "nothing to install"})
		return nil
	}
	for _, p := range queue {
		if err := in.install(ctx, lease, p); err != nil {
			return err
		}
	}
	return nil
}

// install installs one package and records its progress.
func (in *Installer) install(ctx context.Context, lease *lock.Lease, p instr.Package) error {
	if err := lease.SetPurpose(purpose("installing ", p.Name)); err != nil {
		return err
	}
	pid := os.Getpid()
	err := in.update(lease, func(f *instr.File) {
		q := f.Find(p.Name)
		q.State, q.Attempts, q.PID, q.Started, q.Finished = instr.Installing, q.Attempts+1, pid, time.Now(), time.Time{}
	})
	if err != nil {
		return err
	}
	in.emit(report.Event{Event: EvInstalling, Locked: true, Package: p.Name,
		Msg: fmt.Sprintf("installing %s (%d files)", p.Name, p.Files)})
	start := time.Now()
	if err := in.writeFiles(ctx, p); err != nil {
		// Interrupted (stopped, or the disk failed): put it back in
		// the queue for the next run.
		removePackageDir(filepath.Join(in.cfg.Target, instr.Slug(p.Name)))
		uerr := in.update(lease, func(f *instr.File) { f.Find(p.Name).State = instr.Queued })
		if uerr == nil {
			in.emit(report.Event{Event: EvRequeued, Locked: true, Package: p.Name,
				Msg: fmt.Sprintf("installing %s stopped (%v): partial files removed, queued again", p.Name, err)})
		}
		return errors.Join(err, uerr)
	}
	var installs int
	err = in.update(lease, func(f *instr.File) {
		q := f.Find(p.Name)
		q.State, q.Installs, q.Finished = instr.Done, q.Installs+1, time.Now()
		installs = q.Installs
	})
	if err != nil {
		return err
	}
	in.emit(report.Event{Event: EvInstalled, Locked: true, Package: p.Name,
		Msg: fmt.Sprintf("installed %s in %s (installs recorded: %d)", p.Name, report.Seconds(time.Since(start)), installs)})
	return nil
}

// writeFiles is the observable effect of an install: the package's
// files appear one by one in TARGET/<slug>/, and MANIFEST last. A
// previous partial install is removed first, so installing again is
// safe.
func (in *Installer) writeFiles(ctx context.Context, p instr.Package) error {
	dir := filepath.Join(in.cfg.Target, instr.Slug(p.Name))
	if err := removePackageDir(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	n := max(p.Files, 1)
	step := in.cfg.InstallTime / time.Duration(n)
	t := time.NewTimer(step)
	defer t.Stop()
	var manifest strings.Builder
	fmt.Fprintf(&manifest, "package: %s\ninstalled-by: %d\n", p.Name, os.Getpid())
	for i := 1; i <= n; i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		t.Reset(step)
		name := fmt.Sprintf("file-%02d.dat", i)
		content := fmt.Sprintf("%s, file %d of %d\n", p.Name, i, n)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(&manifest, "file: %s\n", name)
	}
	return os.WriteFile(filepath.Join(dir, "MANIFEST"), []byte(manifest.String()), 0o644)
}

// update applies fn to the instruction file under lease.
func (in *Installer) update(lease *lock.Lease, fn func(*instr.File)) error {
	err := in.g.Update(lease, func(old []byte) ([]byte, error) {
		f, err := instr.Decode(old)
		if err != nil {
			return nil, err
		}
		fn(&f)
		f.Updated = time.Now()
		return f.Encode(), nil
	})
	if errors.Is(err, lock.ErrCorrupt) {
		// The guarded file detected damage (storage, or a program that
		// wrote it without the lock package). Start again from an empty
		// file: the catalog is queued again and nothing installed is
		// lost from disk.
		in.emit(report.Event{Event: EvError, Locked: true, Error: err.Error(),
			Msg: "the instruction file is damaged; starting a new one: " + err.Error()})
		var f instr.File
		fn(&f)
		f.Updated = time.Now()
		return in.g.Write(lease, f.Encode())
	}
	return err
}

// fetchCatalog reads packages.json from the validated server.
func (in *Installer) fetchCatalog(ctx context.Context, server string) (instr.Catalog, error) {
	ctx, cancel := context.WithTimeout(ctx, in.cfg.CheckTimeout)
	defer cancel()
	var b []byte
	if strings.HasPrefix(server, "http://") || strings.HasPrefix(server, "https://") {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+"/"+instr.CatalogFile, nil)
		if err != nil {
			return instr.Catalog{}, err
		}
		resp, err := in.client.Do(req)
		if err != nil {
			return instr.Catalog{}, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return instr.Catalog{}, fmt.Errorf("HTTP status %s", resp.Status)
		}
		b, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return instr.Catalog{}, err
		}
	} else {
		var err error
		b, err = readFileCtx(ctx, filepath.Join(server, instr.CatalogFile))
		if err != nil {
			return instr.Catalog{}, err
		}
	}
	return instr.DecodeCatalog(b)
}

// readFileCtx reads a file on a share, giving up when ctx ends (a read
// on a dead share can block for minutes; the goroutine finishes on its
// own).
func readFileCtx(ctx context.Context, path string) ([]byte, error) {
	type res struct {
		b   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() {
		b, err := os.ReadFile(path)
		ch <- res{b, err}
	}()
	select {
	case r := <-ch:
		return r.b, r.err
	case <-ctx.Done():
		return nil, &fs.PathError{Op: "read", Path: path, Err: ctx.Err()}
	}
}

// purpose builds a purpose that the lock package accepts (at most 256
// bytes).
func purpose(verb, what string) string {
	s := verb + what
	if len(s) > 256 {
		s = s[:253] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

// cause returns the precondition's own error from a lock error, for a
// shorter message.
func cause(err error) error {
	var ae *logon.AllFailedError
	if errors.As(err, &ae) {
		return ae
	}
	return err
}

// removePackageDir removes a package's directory, which holds only the
// files writeFiles made. It removes them one by one rather than with
// os.RemoveAll, which Wine 8 (where the Windows tests run) cannot do on
// a non-empty directory.
func removePackageDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return os.Remove(dir)
}
