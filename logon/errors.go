package logon

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Kind classifies why a check failed, so that a caller can react to the
// class of failure (retry later, report a configuration mistake, fail over)
// without parsing error strings.
//
// A Kind is also the sentinel error of its class: a *CheckError matches its
// Kind with errors.Is, so
//
//	errors.Is(err, logon.KindRefused)
//
// reports whether err (or, for an *AllFailedError, any server's failure) is
// a refused connection, and errors.As(err, &k) with k a Kind finds the Kind
// of the first *CheckError in err. One type serves both uses so that the
// field a caller switches on and the value it matches with errors.Is cannot
// drift apart.
type Kind int

// The kinds of check failure. KindOther is the zero value: a failure that
// fits none of the other kinds. A KindTimeout failure also matches
// context.DeadlineExceeded, and a KindCanceled one context.Canceled.
const (
	KindOther        Kind = iota // none of the kinds below
	KindTimeout                  // no answer before the check timeout or the context deadline
	KindCanceled                 // the caller's context was canceled
	KindRefused                  // the host answered but nothing listens on the port
	KindUnreachable              // no route to the host or its network
	KindDNS                      // the host name could not be resolved
	KindTLS                      // the TLS handshake or certificate verification failed
	KindHTTPStatus               // the HTTP status was not one of the accepted ones
	KindBodyMismatch             // the HTTP response body did not match
	KindNotFound                 // a path or marker file does not exist
	KindNotDirectory             // the path exists but is not a directory
	KindPermission               // the path exists but may not be read
)

var kindNames = [...]string{
	KindOther:        "check failed",
	KindTimeout:      "timed out",
	KindCanceled:     "canceled",
	KindRefused:      "connection refused",
	KindUnreachable:  "unreachable",
	KindDNS:          "host name not resolved",
	KindTLS:          "TLS failure",
	KindHTTPStatus:   "unexpected HTTP status",
	KindBodyMismatch: "unexpected response body",
	KindNotFound:     "not found",
	KindNotDirectory: "not a directory",
	KindPermission:   "permission denied",
}

// String returns a short lower-case description of k, such as
// "connection refused".
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("logon.Kind(%d)", int(k))
}

// Error returns k's description prefixed with "logon: ", which is what a
// Kind says when it is used as a sentinel error.
func (k Kind) Error() string { return "logon: " + k.String() }

// CheckError reports that one logon server failed its check: which server,
// what kind of failure, and the underlying cause.
//
// Its message names the server first, so that it can be shown to a user as
// is:
//
//	logon server 10.0.0.5:445: connection refused
type CheckError struct {
	// Server names the server as the check knows it: the host:port of a
	// TCP check, the URL of an HTTP check, the directory of a Path check,
	// the name given to Func.
	Server string
	// Kind classifies the failure.
	Kind Kind
	// Err is the underlying cause, such as a *net.OpError, a
	// *fs.PathError or context.DeadlineExceeded. It may be nil.
	Err error

	// detail, when set by this package, replaces the Kind's description in
	// the message with something more specific ("HTTP status 503 Service
	// Unavailable, want 200-299").
	detail string
}

func (e *CheckError) Error() string {
	var b strings.Builder
	b.WriteString("logon server ")
	b.WriteString(e.Server)
	b.WriteString(": ")
	if e.detail != "" {
		b.WriteString(e.detail)
		return b.String()
	}
	b.WriteString(e.Kind.String())
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *CheckError) Unwrap() error { return e.Err }

// Is reports whether target is e's Kind. KindTimeout also matches
// context.DeadlineExceeded and KindCanceled matches context.Canceled, so
// that a check failure reads like any other context-bounded operation.
func (e *CheckError) Is(target error) bool {
	if k, ok := target.(Kind); ok {
		return k == e.Kind
	}
	switch e.Kind {
	case KindTimeout:
		return target == context.DeadlineExceeded
	case KindCanceled:
		return target == context.Canceled
	}
	return false
}

// As sets *target to e's Kind when target is a *Kind, so that
// errors.As(err, &k) finds the Kind of a failure however deeply wrapped.
func (e *CheckError) As(target any) bool {
	if k, ok := target.(*Kind); ok {
		*k = e.Kind
		return true
	}
	return false
}

// Failure is one server's failure within an *AllFailedError.
type Failure struct {
	// Name is the Server's Name in the List.
	Name string
	// Err is the error its check returned. Errors that List produced
	// itself, and errors of checks that did not return a *CheckError, are
	// *CheckError values naming the server.
	Err error
}

// AllFailedError reports that no server in a List passed its check. It
// lists every server's failure in list order; servers that were not tried
// because the context ended first are listed with a KindTimeout or
// KindCanceled error.
//
// errors.Is and errors.As look through every failure: errors.Is(err,
// KindRefused) is true when any server refused, and errors.As(err, &ce)
// with ce a *CheckError finds the first server's failure. Range over
// Failures to see each.
type AllFailedError struct {
	Failures []Failure
}

// Error lists the failures, each naming its server once: a
// *CheckError names the server it checked, and any other error is
// prefixed with the Failure's Name. With one server the message is that
// server's failure alone ("logon server 10.0.0.5:445: connection
// refused"); with several it begins "all N logon servers failed: ".
func (e *AllFailedError) Error() string {
	var b strings.Builder
	if len(e.Failures) != 1 {
		fmt.Fprintf(&b, "all %d logon servers failed: ", len(e.Failures))
	}
	for i, f := range e.Failures {
		if i > 0 {
			b.WriteString("; ")
		}
		if _, ok := f.Err.(*CheckError); !ok {
			b.WriteString("logon server " + f.Name + ": ")
		}
		b.WriteString(f.Err.Error())
	}
	return b.String()
}

// Unwrap returns every server's error, in list order.
func (e *AllFailedError) Unwrap() []error {
	errs := make([]error, len(e.Failures))
	for i, f := range e.Failures {
		errs[i] = f.Err
	}
	return errs
}

// ErrConfig is matched by every *ConfigError.
var ErrConfig = errors.New("logon: invalid configuration")

// ConfigError reports an invalid argument or option given to a
// constructor (TCP, HTTP, Path, Func, NewList), which returns it instead of
// a check, so that a mistake shows when the program starts rather than at
// the first probe.
type ConfigError struct {
	// Func is the constructor: "TCP", "HTTP", "Path", "Func" or "NewList".
	Func string
	// Option names the offending option ("WithTimeout") or argument
	// ("addr"); empty when the mistake is not tied to one.
	Option string
	// Err describes the mistake.
	Err error
}

func (e *ConfigError) Error() string {
	if e.Option == "" {
		return "logon." + e.Func + ": " + e.Err.Error()
	}
	return "logon." + e.Func + ": " + e.Option + ": " + e.Err.Error()
}

// Unwrap returns the description of the mistake.
func (e *ConfigError) Unwrap() error { return e.Err }

// Is reports whether target is ErrConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrConfig }
