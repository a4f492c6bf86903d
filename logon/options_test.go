package logon

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/internal/snippet"
)

// connLog is a TCP listener that records the remote address of every
// connection it accepts.
type connLog struct {
	addr string
	mu   sync.Mutex
	seen []string
}

func newConnLog(t *testing.T) *connLog {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	cl := &connLog{addr: l.Addr().String()}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			cl.mu.Lock()
			cl.seen = append(cl.seen, c.RemoteAddr().String())
			cl.mu.Unlock()
			c.Close()
		}
	}()
	return cl
}

// requireNoOtherConns connects once itself and, once that connection has
// been accepted, requires that it was the only one: connections are
// accepted in the order they were made, so any earlier one would be listed
// first.
func (cl *connLog) requireNoOtherConns(t *testing.T) {
	t.Helper()
	c, err := net.Dial("tcp", cl.addr)
	require.NoError(t, err)
	mine := c.LocalAddr().String()
	defer c.Close()
	require.Eventually(t, func() bool {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		for _, a := range cl.seen {
			if a == mine {
				return true
			}
		}
		return false
	}, promptly, time.Millisecond)
	cl.mu.Lock()
	defer cl.mu.Unlock()
	require.Equal(t, []string{mine}, cl.seen, "a misconfigured TCP check connected")
}

// TestConfigErrors: a constructor given a bad argument or option returns
// a *ConfigError naming it and no Check, without touching the network or
// calling the function.
func TestConfigErrors(t *testing.T) {
	tcp := newConnLog(t)
	var hits counter
	srv := httptest.NewServer(&hits)
	defer srv.Close()
	var calls atomic.Int32
	f := func(context.Context) error { calls.Add(1); return nil }
	h, a := srv.URL, tcp.addr
	type built struct {
		c   Check
		err error
	}
	b := func(c Check, err error) built { return built{c, err} }

	tests := []struct {
		name    string
		got     built
		wantMsg string
	}{
		{"tcp no port", b(TCP("10.0.0.5")), "logon.TCP: addr: address 10.0.0.5: missing port in address"},
		{"tcp empty port", b(TCP("10.0.0.5:")), "logon.TCP: addr: missing port in 10.0.0.5:"},
		{"tcp no host", b(TCP(":445")), "logon.TCP: addr: missing host in :445"},
		{"tcp negative timeout", b(TCP(a, WithTimeout(-time.Second))), "logon.TCP: WithTimeout: negative timeout -1s"},
		{"zero option", b(TCP(a, Option{})), "logon.TCP: option 0: nil or zero option"},
		{"zero option later", b(TCP(a, WithTimeout(time.Second), Option{})), "logon.TCP: option 1: nil or zero option"},
		{"http bad scheme", b(HTTP("ftp://h/x")), `logon.HTTP: url: scheme "ftp" is not http or https`},
		{"http relative", b(HTTP("/health")), `logon.HTTP: url: scheme "" is not http or https`},
		{"http no host", b(HTTP("http:///health")), "logon.HTTP: url: missing host in http:///health"},
		{"http unparsable", b(HTTP(h + "/%zz")), `logon.HTTP: url: parse "` + h + `/%zz": invalid URL escape "%zz"`},
		{"http status range", b(HTTP(h, WithStatus(200, 99))), "logon.HTTP: WithStatus: status code 99 out of range 100..599"},
		{"http no status", b(HTTP(h, WithStatus())), "logon.HTTP: WithStatus: no status codes"},
		{"http bad regexp", b(HTTP(h, WithBodyMatch("("))), "logon.HTTP: WithBodyMatch: error parsing regexp: missing closing ): `(`"},
		{"http empty contains", b(HTTP(h, WithBodyContains(""))), "logon.HTTP: WithBodyContains: empty string"},
		{"http both matchers", b(HTTP(h, WithBodyContains("a"), WithBodyMatch("b"))), "logon.HTTP: WithBodyMatch: cannot be combined with WithBodyContains"},
		{"http nil client", b(HTTP(h, WithClient(nil))), "logon.HTTP: WithClient: nil *http.Client"},
		{"http body limit", b(HTTP(h, WithBodyLimit(0))), "logon.HTTP: WithBodyLimit: non-positive limit 0"},
		{"http nil option", b(HTTP(h, WithTimeout(time.Second), nil)), "logon.HTTP: option 1: nil or zero option"},
		{"http zero option", b(HTTP(h, Option{})), "logon.HTTP: option 0: nil or zero option"},
		{"path empty", b(Path("")), "logon.Path: path: empty path"},
		{"path NUL", b(Path("a\x00b")), "logon.Path: path: path contains a NUL byte"},
		{"path marker escapes", b(Path("/srv", WithMarker("../etc/passwd"))), `logon.Path: WithMarker: marker "../etc/passwd" is not a local path inside the directory`},
		{"path marker absolute", b(Path("/srv", WithMarker("/etc/passwd"))), `logon.Path: WithMarker: marker "/etc/passwd" is not a local path inside the directory`},
		{"path marker empty", b(Path("/srv", WithMarker(""))), `logon.Path: WithMarker: marker "" is not a local path inside the directory`},
		{"path nil option", b(Path("/srv", nil)), "logon.Path: option 0: nil or zero option"},
		{"func no name", b(Func("", f)), "logon.Func: name: empty name"},
		{"func nil", b(Func("f", nil)), "logon.Func: f: nil function"},
		{"func negative timeout", b(Func("f", f, WithTimeout(-1))), "logon.Func: WithTimeout: negative timeout -1ns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Nil(t, tt.got.c, "a misconfigured constructor returned a Check")
			err := tt.got.err
			require.ErrorIs(t, err, ErrConfig)
			var ce *ConfigError
			require.True(t, errors.As(err, &ce))
			require.Same(t, ce, err, "the error is the *ConfigError itself")
			require.Equal(t, tt.wantMsg, err.Error())
			var che *CheckError
			require.False(t, errors.As(err, &che), "a configuration error is not a server failure")
		})
	}
	require.Zero(t, hits.n.Load(), "a misconfigured HTTP check sent a request")
	require.Zero(t, calls.Load(), "a misconfigured Func check called its function")
	tcp.requireNoOtherConns(t)
}

// TestOptionsOfOtherChecksDoNotCompile: an option given to a check it does
// not apply to is a compile error naming the option, not a run-time one.
func TestOptionsOfOtherChecksDoNotCompile(t *testing.T) {
	build := func(call string) (string, error) {
		return snippet.Build(t, []string{"github.com/agentlock/agentlock/logon"}, "_, _ = "+call)
	}
	for _, tt := range []struct{ call, want string }{
		{`logon.TCP("h:1", logon.WithStatus(200))`, "WithStatus(200)"},
		{`logon.TCP("h:1", logon.WithMarker("x"))`, `WithMarker("x")`},
		{`logon.HTTP("http://h", logon.WithMarker("x"))`, `WithMarker("x")`},
		{`logon.Path("/srv", logon.WithClient(nil))`, "WithClient(nil)"},
		{`logon.Func("f", nil, logon.WithBodyLimit(1))`, "WithBodyLimit(1)"},
	} {
		out, err := build(tt.call)
		require.Error(t, err, "%s compiled", tt.call)
		require.Contains(t, out, tt.want, "%s: the compiler names the option", tt.call)
	}
	// The same program with options that apply compiles: the failures
	// above are the options', not the harness's.
	out, err := build(`logon.HTTP("http://h", logon.WithTimeout(1), logon.WithStatus(200))`)
	require.NoError(t, err, "%s", out)
}

func TestListConfigErrors(t *testing.T) {
	ok := func(context.Context) error { return nil }
	tests := []struct {
		name    string
		build   func() error
		wantMsg string
	}{
		{"list empty", func() error { _, err := NewList(nil); return err }, "logon.NewList: servers: no servers"},
		{"list no name", func() error { _, err := NewList([]Server{{Check: ok}}); return err }, "logon.NewList: servers: server 0 has no Name"},
		{"list no check", func() error { _, err := NewList([]Server{{Name: "a"}}); return err }, `logon.NewList: servers: server "a" has no Check`},
		{"list duplicate", func() error { _, err := NewList([]Server{{"a", ok}, {"a", ok}}); return err }, `logon.NewList: servers: duplicate server "a"`},
		{"list strategy", func() error { _, err := NewList([]Server{{"a", ok}}, WithStrategy(7)); return err }, "logon.NewList: WithStrategy: unknown strategy logon.Strategy(7)"},
		{"list check timeout", func() error { _, err := NewList([]Server{{"a", ok}}, WithCheckTimeout(0)); return err }, "logon.NewList: WithCheckTimeout: non-positive timeout 0s"},
		{"list success ttl", func() error { _, err := NewList([]Server{{"a", ok}}, WithSuccessTTL(-1)); return err }, "logon.NewList: WithSuccessTTL: negative TTL -1ns"},
		{"list failure ttl", func() error { _, err := NewList([]Server{{"a", ok}}, WithFailureTTL(-1)); return err }, "logon.NewList: WithFailureTTL: negative TTL -1ns"},
		{"list zero option", func() error { _, err := NewList([]Server{{"a", ok}}, ListOption{}); return err }, "logon.NewList: option 0: zero ListOption value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.build()
			require.Error(t, err)
			require.ErrorIs(t, err, ErrConfig)
			var ce *ConfigError
			require.True(t, errors.As(err, &ce))
			require.Equal(t, tt.wantMsg, err.Error())
		})
	}
}

// TestValidOptions: well-formed checks build without error, and a call
// with a canceled context returns KindCanceled without touching the
// network.
func TestValidOptions(t *testing.T) {
	valid := validCheck(t)
	checks := []Check{
		valid(HTTP("https://logon1.example/health",
			WithTimeout(0), WithStatus(200, 204), WithBodyMatch(`ready`), WithClient(&http.Client{}), WithBodyLimit(1024))),
		valid(Path(`/srv/sms/inst`, WithMarker("INSTRUCTIONS.txt"), WithTimeout(time.Second))),
		valid(Path(`\\logon1\sms\inst`)),
		valid(TCP("[::1]:445", WithTimeout(time.Second))),
		valid(Func("f", func(context.Context) error { return errors.New("called") }, WithTimeout(time.Second))),
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i, c := range checks {
		err := c(ctx)
		require.NotErrorIs(t, err, ErrConfig, "check %d", i)
		requireKind(t, err, KindCanceled)
	}
	_, err := NewList([]Server{{"a", checks[0]}, {"b", checks[1]}, {"c", checks[3]}, {"d", checks[4]}})
	require.NoError(t, err)
}
