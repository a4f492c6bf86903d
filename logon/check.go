package logon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// A Check answers "is this logon server usable right now?". It returns nil
// when the server is usable and an error otherwise; the checks built by this
// package return a *CheckError. A Check must return promptly once ctx is done.
// The constructors (TCP, HTTP, Path, Func) validate their arguments and
// options and return a *ConfigError instead of a Check for a mistake, so a
// Check in hand is always a well-formed one.
//
// Check has the plain shape func(context.Context) error, so a Check, or a
// method value such as (*Validation).Check, can be passed wherever such a
// function is expected, for example to lock.WithPrecondition, without a
// conversion and without this package importing lock.
type Check func(ctx context.Context) error

// DefaultTimeout bounds each TCP, HTTP, Path and Func check unless
// WithTimeout says otherwise. A check also ends when its context does,
// whichever comes first. The default exists because an operating system's
// own connect timeout can be minutes, and a validation step that hangs that
// long is the failure this package is meant to prevent.
const DefaultTimeout = 5 * time.Second

// DefaultBodyLimit is the number of response body bytes an HTTP check reads
// (to match them, then to drain the connection for reuse) unless
// WithBodyLimit says otherwise.
const DefaultBodyLimit = 64 << 10

// setting is one option: its name, for errors, and what it sets.
type setting struct {
	name  string
	apply func(*config) error
}

// An Option configures any check: TCP, HTTP, Path or Func. WithTimeout is
// the one such option; every Option is also an HTTPOption and a
// PathOption. The options of one kind of check have a type of their own,
// so that giving a check an option that does not apply to it (WithStatus
// to TCP, say) does not compile.
type Option struct{ s *setting }

// An HTTPOption configures an HTTP check: an Option, or one of WithStatus,
// WithBodyContains, WithBodyMatch, WithClient and WithBodyLimit.
type HTTPOption interface{ httpSetting() *setting }

// A PathOption configures a Path check: an Option, or WithMarker.
type PathOption interface{ pathSetting() *setting }

func (o Option) setting() *setting     { return o.s }
func (o Option) httpSetting() *setting { return o.s }
func (o Option) pathSetting() *setting { return o.s }

type httpOnly struct{ s *setting }

func (o httpOnly) httpSetting() *setting { return o.s }

type pathOnly struct{ s *setting }

func (o pathOnly) pathSetting() *setting { return o.s }

type config struct {
	timeout   time.Duration
	statuses  []int // nil: any 2xx
	contains  *string
	match     *regexp.Regexp
	client    *http.Client
	bodyLimit int64
	marker    string
}

// WithTimeout bounds each run of the check to d, measured from the call.
// The check also ends when its context does. d == 0 removes the bound
// (DefaultTimeout) so that only the context limits the check; d < 0 is an
// error. It applies to every constructor.
func WithTimeout(d time.Duration) Option {
	return Option{&setting{"WithTimeout", func(c *config) error {
		if d < 0 {
			return fmt.Errorf("negative timeout %v", d)
		}
		c.timeout = d
		return nil
	}}}
}

// settings returns the setting of each option; a nil interface or zero
// Option gives a nil setting, which newConfig reports.
func settings[O any](opts []O, of func(O) *setting) []*setting {
	s := make([]*setting, len(opts))
	for i, o := range opts {
		if any(o) != nil {
			s[i] = of(o)
		}
	}
	return s
}

func newConfig(fn string, opts []*setting) (*config, error) {
	c := &config{timeout: DefaultTimeout, bodyLimit: DefaultBodyLimit}
	for i, o := range opts {
		if o == nil {
			return nil, &ConfigError{Func: fn, Option: fmt.Sprintf("option %d", i), Err: errors.New("nil or zero option")}
		}
		if err := o.apply(c); err != nil {
			return nil, &ConfigError{Func: fn, Option: o.name, Err: err}
		}
	}
	return c, nil
}

// context returns the context one run of a check uses.
func (c *config) context(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.timeout > 0 {
		return context.WithTimeout(ctx, c.timeout)
	}
	return context.WithCancel(ctx)
}

// Func returns a Check that calls f. The name identifies the server in
// errors. An error from f that is not already a *CheckError is wrapped in
// one, classified the way the built-in checks classify theirs (a
// *net.DNSError is KindDNS, fs.ErrNotExist is KindNotFound, a deadline is
// KindTimeout, and so on). f must return once its context is done.
//
// When name is empty, f is nil or an option is invalid, Func returns a
// *ConfigError and no Check.
func Func(name string, f func(ctx context.Context) error, opts ...Option) (Check, error) {
	if name == "" {
		return nil, &ConfigError{Func: "Func", Option: "name", Err: errors.New("empty name")}
	}
	if f == nil {
		return nil, &ConfigError{Func: "Func", Option: "f", Err: errors.New("nil function")}
	}
	cfg, err := newConfig("Func", settings(opts, Option.setting))
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		if err := ctx.Err(); err != nil {
			return contextError(name, ctx, nil, 0)
		}
		cctx, cancel := cfg.context(ctx)
		defer cancel()
		err := f(cctx)
		if err == nil {
			return nil
		}
		ce := classify(name, ctx, cctx, cfg.timeout, err)
		if ce.Kind != KindTimeout && ce.Kind != KindCanceled && ce.detail != "" {
			c := *ce      // ce may be the function's own error: do not edit it
			c.detail = "" // keep the function's own words in the message
			return &c
		}
		return ce
	}, nil
}

// contextError returns the *CheckError for a check cut short by a
// context: parent is the caller's context, cctx the check's own (parent
// bounded by timeout, or nil when the check never started). It tells apart
// a cancellation, the check's own timeout, and the caller's deadline, by
// which deadline came first rather than by which timer fired first.
func contextError(server string, parent, cctx context.Context, timeout time.Duration) *CheckError {
	if errors.Is(parent.Err(), context.Canceled) {
		return &CheckError{Server: server, Kind: KindCanceled, Err: context.Canceled, detail: "check canceled"}
	}
	if timeout > 0 && cctx != nil {
		cdl, _ := cctx.Deadline()
		if pdl, ok := parent.Deadline(); !ok || cdl.Before(pdl) {
			return &CheckError{Server: server, Kind: KindTimeout, Err: context.DeadlineExceeded,
				detail: "no answer within " + timeout.String()}
		}
	}
	return &CheckError{Server: server, Kind: KindTimeout, Err: context.DeadlineExceeded,
		detail: "no answer before the context deadline"}
}

// expired reports whether ctx is done or its deadline has passed. An
// operation bounded by ctx's deadline (a dial, a read) can notice the
// deadline a moment before ctx's own timer marks ctx done.
func expired(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// classify turns err, returned by one run of a check, into a *CheckError.
// parent is the caller's context and cctx the run's own (parent plus the
// check's timeout); when either has ended, the failure is a timeout or a
// cancellation whatever the operation itself reported, because the
// operation was cut short rather than answered.
func classify(server string, parent, cctx context.Context, timeout time.Duration, err error) *CheckError {
	// A check that already says which server failed how is passed on
	// as it is; anything else (including an *AllFailedError from a
	// nested List) is wrapped whole, so no failure is lost.
	if ce, ok := err.(*CheckError); ok {
		return ce
	}
	var ce *CheckError
	if expired(cctx) {
		ce := contextError(server, parent, cctx, timeout)
		ce.Err = err
		return ce
	}
	ce = &CheckError{Server: server, Err: err}
	var (
		dnsErr   *net.DNSError
		netErr   net.Error
		certErr  *tls.CertificateVerificationError
		unknownA x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		invalid  x509.CertificateInvalidError
		recErr   tls.RecordHeaderError
		alertErr tls.AlertError
	)
	switch {
	case errors.As(err, &dnsErr):
		if dnsErr.IsTimeout {
			ce.Kind, ce.detail = KindTimeout, fmt.Sprintf("timed out resolving host %q", dnsErr.Name)
		} else {
			ce.Kind, ce.detail = KindDNS, fmt.Sprintf("cannot resolve host %q: %v", dnsErr.Name, dnsErr.Err)
		}
	case errors.As(err, &certErr), errors.As(err, &unknownA), errors.As(err, &hostErr),
		errors.As(err, &invalid), errors.As(err, &recErr), errors.As(err, &alertErr),
		// net/http replaces the tls.RecordHeaderError of an https request
		// answered in plain HTTP with an untyped error; its text is all
		// there is to recognize it by.
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		ce.Kind, ce.detail = KindTLS, "TLS failure: "+innermost(err)
	case isRefused(err):
		ce.Kind, ce.detail = KindRefused, "connection refused"
	case isUnreachable(err):
		ce.Kind, ce.detail = KindUnreachable, "unreachable: "+innermost(err)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		ce.Kind, ce.detail = KindTimeout, "timed out: "+innermost(err)
	case errors.Is(err, context.Canceled):
		ce.Kind, ce.detail = KindCanceled, "check canceled"
	case errors.Is(err, fs.ErrNotExist):
		ce.Kind = KindNotFound
	case errors.Is(err, fs.ErrPermission):
		ce.Kind = KindPermission
	default:
		ce.Kind = KindOther
	}
	return ce
}

// innermost returns the message of the deepest error in err's single-Unwrap
// chain that still has something to say, dropping the "Get "url": dial tcp
// ...:" prefixes that repeat what CheckError.Server already says.
func innermost(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil || next.Error() == "" {
			return err.Error()
		}
		err = next
	}
}

// isInvalidName reports whether host is in the ".invalid" top-level
// domain, which RFC 6761 reserves as never resolving and asks resolver
// libraries to fail at once. Doing so here makes the failure immediate and
// independent of the network's resolver.
func isInvalidName(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return h == "invalid" || strings.HasSuffix(h, ".invalid")
}

func invalidNameError(server, host string) *CheckError {
	err := &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	return &CheckError{Server: server, Kind: KindDNS, Err: err,
		detail: fmt.Sprintf("cannot resolve host %q: %v", host, err.Err)}
}
