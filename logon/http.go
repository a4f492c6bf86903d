package logon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// defaultClient is used by HTTP checks without WithClient. It is not
// http.DefaultClient so that a program changing that one does not change
// its health checks; it shares http.DefaultTransport and its connection
// pool, proxy settings from the environment and redirect policy.
var defaultClient = &http.Client{}

// WithStatus makes an HTTP check accept exactly the given status codes
// instead of the default, any 2xx status. Each code must be in 100..599 and
// at least one must be given.
func WithStatus(codes ...int) HTTPOption {
	return httpOnly{&setting{"WithStatus", func(c *config) error {
		if len(codes) == 0 {
			return errors.New("no status codes")
		}
		for _, code := range codes {
			if code < 100 || code > 599 {
				return fmt.Errorf("status code %d out of range 100..599", code)
			}
		}
		c.statuses = append([]int(nil), codes...)
		return nil
	}}}
}

// WithBodyContains makes an HTTP check also require that the first
// WithBodyLimit bytes of the response body contain s. s must not be empty.
// It cannot be combined with WithBodyMatch.
func WithBodyContains(s string) HTTPOption {
	return httpOnly{&setting{"WithBodyContains", func(c *config) error {
		if s == "" {
			return errors.New("empty string")
		}
		if c.match != nil {
			return errors.New("cannot be combined with WithBodyMatch")
		}
		c.contains = &s
		return nil
	}}}
}

// WithBodyMatch makes an HTTP check also require that the first
// WithBodyLimit bytes of the response body match the regular expression
// pattern (package regexp syntax, unanchored). A pattern that does not
// compile is a configuration error (a *ConfigError from HTTP). It
// cannot be combined with WithBodyContains.
func WithBodyMatch(pattern string) HTTPOption {
	return httpOnly{&setting{"WithBodyMatch", func(c *config) error {
		re, err := regexp.Compile(pattern)
		if err != nil {
			return err
		}
		if c.contains != nil {
			return errors.New("cannot be combined with WithBodyContains")
		}
		c.match = re
		return nil
	}}}
}

// WithClient makes an HTTP check send its request with client, for example
// one whose transport trusts a private certificate authority. The client's
// own Timeout, if any, applies in addition to the check's. client must not
// be nil.
func WithClient(client *http.Client) HTTPOption {
	return httpOnly{&setting{"WithClient", func(c *config) error {
		if client == nil {
			return errors.New("nil *http.Client")
		}
		c.client = client
		return nil
	}}}
}

// WithBodyLimit sets how many bytes of the response body an HTTP check
// reads: the body matched by WithBodyContains or WithBodyMatch is cut to n
// bytes, and at most n bytes more are read to let the connection be reused.
// n must be positive; the default is DefaultBodyLimit.
func WithBodyLimit(n int64) HTTPOption {
	return httpOnly{&setting{"WithBodyLimit", func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("non-positive limit %d", n)
		}
		c.bodyLimit = n
		return nil
	}}}
}

// HTTP returns a Check that sends a GET request to rawURL, an http or
// https URL, and succeeds when the response status is accepted (any 2xx
// unless WithStatus says otherwise) and, with WithBodyContains or
// WithBodyMatch, the body matches. Redirects are followed as the client's
// policy says. The response body is read up to a limit and closed in every
// case. A host in the ".invalid" domain fails at once with KindDNS
// (RFC 6761).
//
// When rawURL is not an absolute http or https URL or an option is
// invalid, HTTP returns a *ConfigError and no Check.
func HTTP(rawURL string, opts ...HTTPOption) (Check, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, &ConfigError{Func: "HTTP", Option: "url", Err: err}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, &ConfigError{Func: "HTTP", Option: "url", Err: fmt.Errorf("scheme %q is not http or https", u.Scheme)}
	}
	if u.Host == "" {
		return nil, &ConfigError{Func: "HTTP", Option: "url", Err: errors.New("missing host in " + rawURL)}
	}
	cfg, err := newConfig("HTTP", settings(opts, HTTPOption.httpSetting))
	if err != nil {
		return nil, err
	}
	client := cfg.client
	if client == nil {
		client = defaultClient
	}
	p := &httpProbe{url: rawURL, host: u.Hostname(), cfg: cfg, client: client}
	return p.check, nil
}

// httpProbe is the state of one HTTP check, fixed when it is built.
type httpProbe struct {
	url, host string
	cfg       *config
	client    *http.Client
}

func (p *httpProbe) check(ctx context.Context) error {
	if ctx.Err() != nil {
		return contextError(p.url, ctx, nil, 0)
	}
	if isInvalidName(p.host) {
		return invalidNameError(p.url, p.host)
	}
	cctx, cancel := p.cfg.context(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, p.url, nil)
	if err != nil {
		return &CheckError{Server: p.url, Kind: KindOther, Err: err}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return classify(p.url, ctx, cctx, p.cfg.timeout, err)
	}
	defer func() {
		// Drain a bounded amount so the connection can be reused,
		// and never wait on more than that.
		io.Copy(io.Discard, io.LimitReader(resp.Body, p.cfg.bodyLimit))
		resp.Body.Close()
	}()
	if !p.cfg.statusOK(resp.StatusCode) {
		return &CheckError{Server: p.url, Kind: KindHTTPStatus,
			Err:    fmt.Errorf("HTTP status %s", resp.Status),
			detail: fmt.Sprintf("HTTP status %s, want %s", resp.Status, p.cfg.wantStatus())}
	}
	if err := p.matchBody(resp.Body); err != nil {
		return classify(p.url, ctx, cctx, p.cfg.timeout, err)
	}
	return nil
}

// matchBody reads the start of body and matches it as the options say.
func (p *httpProbe) matchBody(body io.Reader) error {
	cfg := p.cfg
	if cfg.contains == nil && cfg.match == nil {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(body, cfg.bodyLimit))
	switch {
	case err != nil:
		return err
	case cfg.contains != nil && !bytes.Contains(b, []byte(*cfg.contains)):
		return &CheckError{Server: p.url, Kind: KindBodyMismatch,
			detail: fmt.Sprintf("response body does not contain %q", *cfg.contains)}
	case cfg.match != nil && !cfg.match.Match(b):
		return &CheckError{Server: p.url, Kind: KindBodyMismatch,
			detail: "response body does not match regexp " + quote(cfg.match.String())}
	}
	return nil
}

func (c *config) statusOK(code int) bool {
	if c.statuses == nil {
		return code >= 200 && code <= 299
	}
	for _, s := range c.statuses {
		if s == code {
			return true
		}
	}
	return false
}

func (c *config) wantStatus() string {
	if c.statuses == nil {
		return "2xx"
	}
	s := make([]string, len(c.statuses))
	for i, code := range c.statuses {
		s[i] = strconv.Itoa(code)
	}
	if len(s) == 1 {
		return s[0]
	}
	return "one of " + strings.Join(s, ", ")
}

// quote quotes a regular expression for a message, with back quotes when
// that needs no escaping, which keeps backslashes readable.
func quote(s string) string {
	if strconv.CanBackquote(s) {
		return "`" + s + "`"
	}
	return strconv.Quote(s)
}
