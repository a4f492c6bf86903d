package logon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// WithMarker makes a Path check also require that the file name, relative
// to the checked directory, exists, is not a directory and can be opened
// for reading: typically the instruction file the installer reads next.
// name must be a local path (see filepath.IsLocal): not empty, not
// absolute, not escaping the directory with "..".
func WithMarker(name string) PathOption {
	return pathOnly{&setting{"WithMarker", func(c *config) error {
		if !filepath.IsLocal(name) {
			return fmt.Errorf("marker %q is not a local path inside the directory", name)
		}
		c.marker = name
		return nil
	}}}
}

// Path returns a Check that succeeds when dir, typically a mounted file
// share, exists, is a directory, and can be listed (it is opened and one
// entry is read), and, with WithMarker, when the marker file in it can be
// opened for reading.
//
// File system calls cannot be canceled, and on a share whose server is
// gone they can block for minutes. The check therefore runs them in a
// goroutine and returns a KindTimeout or KindCanceled error as soon as its
// context or timeout ends; the goroutine finishes on its own later. At most
// one such goroutine runs per Check: a call made while an earlier one is
// still blocked waits for that one's result instead of starting another,
// so a poller probing a dead share every few seconds does not pile up
// blocked goroutines.
//
// When dir is empty or contains a NUL byte, or an option is invalid, Path
// returns a *ConfigError and no Check.
func Path(dir string, opts ...PathOption) (Check, error) {
	p, err := newPath(dir, opts)
	if err != nil {
		return nil, err
	}
	return p.check, nil
}

func newPath(dir string, opts []PathOption) (*pathProbe, error) {
	if dir == "" {
		return nil, &ConfigError{Func: "Path", Option: "path", Err: errors.New("empty path")}
	}
	if strings.IndexByte(dir, 0) >= 0 {
		return nil, &ConfigError{Func: "Path", Option: "path", Err: errors.New("path contains a NUL byte")}
	}
	cfg, err := newConfig("Path", settings(opts, PathOption.pathSetting))
	if err != nil {
		return nil, err
	}
	return &pathProbe{dir: dir, marker: cfg.marker, cfg: cfg}, nil
}

func (p *pathProbe) check(ctx context.Context) error {
	if ctx.Err() != nil {
		return contextError(p.dir, ctx, nil, 0)
	}
	cctx, cancel := p.cfg.context(ctx)
	defer cancel()
	call := p.start()
	select {
	case <-call.done:
		return call.err
	case <-cctx.Done():
		return contextError(p.dir, ctx, cctx, p.cfg.timeout)
	}
}

// pathProbe runs the file system calls of one Path check, one run at a
// time.
type pathProbe struct {
	dir, marker string
	cfg         *config

	mu   sync.Mutex
	call *pathCall // the run in progress, or nil
}

type pathCall struct {
	done chan struct{} // closed when err is set
	err  error
}

// start returns the run in progress, starting one if there is none.
func (p *pathProbe) start() *pathCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.call != nil {
		return p.call
	}
	c := &pathCall{done: make(chan struct{})}
	p.call = c
	go func() {
		c.err = p.run()
		p.mu.Lock()
		p.call = nil
		p.mu.Unlock()
		close(c.done)
	}()
	return c
}

// run does the file system calls; it cannot be interrupted.
func (p *pathProbe) run() error {
	fi, err := os.Stat(p.dir)
	if err != nil {
		return p.fileError(err, "directory not found", "directory not accessible: permission denied")
	}
	if !fi.IsDir() {
		return &CheckError{Server: p.dir, Kind: KindNotDirectory, detail: "not a directory"}
	}
	f, err := os.Open(p.dir)
	if err == nil {
		_, err = f.ReadDir(1)
		f.Close()
		if err == io.EOF { // empty, but readable
			err = nil
		}
	}
	if err != nil {
		return p.fileError(err, "", "directory not readable: permission denied")
	}
	if p.marker == "" {
		return nil
	}
	return p.runMarker()
}

// runMarker checks that the marker file exists and can be opened.
func (p *pathProbe) runMarker() error {
	mpath := filepath.Join(p.dir, p.marker)
	fi, err := os.Stat(mpath)
	switch {
	case err != nil:
		return p.fileError(err, fmt.Sprintf("marker file %q not found", p.marker), "")
	case fi.IsDir():
		return &CheckError{Server: p.dir, Kind: KindOther, detail: fmt.Sprintf("marker %q is a directory, not a file", p.marker)}
	}
	mf, err := os.Open(mpath)
	if err != nil {
		return p.fileError(err, "", fmt.Sprintf("marker file %q not readable: permission denied", p.marker))
	}
	mf.Close()
	return nil
}

// fileError is the *CheckError of a failed file system call: notFound
// and denied, when not empty, replace the message of those two kinds
// with words a user can act on.
func (p *pathProbe) fileError(err error, notFound, denied string) error {
	k := pathKind(err)
	detail := ""
	switch k {
	case KindNotFound:
		detail = notFound
	case KindPermission:
		detail = denied
	}
	return &CheckError{Server: p.dir, Kind: k, Err: err, detail: detail}
}

func pathKind(err error) Kind {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return KindNotFound
	case errors.Is(err, os.ErrPermission):
		return KindPermission
	}
	return KindOther
}
