package logon

import (
	"context"
	"errors"
	"net"
)

// TCP returns a Check that succeeds when a TCP connection to addr, a
// "host:port" address as accepted by net.Dial, can be opened. The
// connection is closed at once; nothing is sent. A host in the ".invalid"
// domain fails at once with KindDNS (RFC 6761).
//
// Only WithTimeout applies to TCP. When addr is not host:port or an option
// is invalid, TCP returns a *ConfigError and no Check.
func TCP(addr string, opts ...Option) (Check, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &ConfigError{Func: "TCP", Option: "addr", Err: err}
	}
	if host == "" {
		return nil, &ConfigError{Func: "TCP", Option: "addr", Err: errors.New("missing host in " + addr)}
	}
	if port == "" {
		return nil, &ConfigError{Func: "TCP", Option: "addr", Err: errors.New("missing port in " + addr)}
	}
	cfg, err := newConfig("TCP", settings(opts, Option.setting))
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	return func(ctx context.Context) error {
		if ctx.Err() != nil {
			return contextError(addr, ctx, nil, 0)
		}
		if isInvalidName(host) {
			return invalidNameError(addr, host)
		}
		cctx, cancel := cfg.context(ctx)
		defer cancel()
		conn, err := d.DialContext(cctx, "tcp", addr)
		if err != nil {
			return classify(addr, ctx, cctx, cfg.timeout, err)
		}
		conn.Close()
		return nil
	}, nil
}
