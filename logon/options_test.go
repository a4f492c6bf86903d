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

// TestConfigErrors: a constructor given a bad argument or option returns a
// Check that fails on every call with the same *ConfigError, whatever the
// context, without touching the network; NewList recognizes that Check
// and refuses it.
func TestConfigErrors(t *testing.T) {
	tcp := newConnLog(t)
	var hits counter
	srv := httptest.NewServer(&hits)
	defer srv.Close()
	var calls atomic.Int32
	f := func(context.Context) error { calls.Add(1); return nil }
	h, a := srv.URL, tcp.addr

	tests := []struct {
		name    string
		check   Check
		wantMsg string
	}{
		{"tcp no port", TCP("10.0.0.5"), "logon.TCP: addr: address 10.0.0.5: missing port in address"},
		{"tcp empty port", TCP("10.0.0.5:"), "logon.TCP: addr: missing port in 10.0.0.5:"},
		{"tcp no host", TCP(":445"), "logon.TCP: addr: missing host in :445"},
		{"tcp negative timeout", TCP(a, WithTimeout(-time.Second)), "logon.TCP: WithTimeout: negative timeout -1s"},
		{"tcp http option", TCP(a, WithStatus(200)), "logon.TCP: WithStatus: does not apply to TCP checks"},
		{"tcp marker option", TCP(a, WithMarker("x")), "logon.TCP: WithMarker: does not apply to TCP checks"},
		{"zero option", TCP(a, Option{}), "logon.TCP: option 0: zero Option value"},
		{"zero option later", TCP(a, WithTimeout(time.Second), Option{}), "logon.TCP: option 1: zero Option value"},
		{"http bad scheme", HTTP("ftp://h/x"), `logon.HTTP: url: scheme "ftp" is not http or https`},
		{"http relative", HTTP("/health"), `logon.HTTP: url: scheme "" is not http or https`},
		{"http no host", HTTP("http:///health"), "logon.HTTP: url: missing host in http:///health"},
		{"http unparsable", HTTP(h + "/%zz"), `logon.HTTP: url: parse "` + h + `/%zz": invalid URL escape "%zz"`},
		{"http status range", HTTP(h, WithStatus(200, 99)), "logon.HTTP: WithStatus: status code 99 out of range 100..599"},
		{"http no status", HTTP(h, WithStatus()), "logon.HTTP: WithStatus: no status codes"},
		{"http bad regexp", HTTP(h, WithBodyMatch("(")), "logon.HTTP: WithBodyMatch: error parsing regexp: missing closing ): `(`"},
		{"http empty contains", HTTP(h, WithBodyContains("")), "logon.HTTP: WithBodyContains: empty string"},
		{"http both matchers", HTTP(h, WithBodyContains("a"), WithBodyMatch("b")), "logon.HTTP: WithBodyMatch: cannot be combined with WithBodyContains"},
		{"http nil client", HTTP(h, WithClient(nil)), "logon.HTTP: WithClient: nil *http.Client"},
		{"http body limit", HTTP(h, WithBodyLimit(0)), "logon.HTTP: WithBodyLimit: non-positive limit 0"},
		{"http marker", HTTP(h, WithMarker("x")), "logon.HTTP: WithMarker: does not apply to HTTP checks"},
		{"path empty", Path(""), "logon.Path: path: empty path"},
		{"path NUL", Path("a\x00b"), "logon.Path: path: path contains a NUL byte"},
		{"path marker escapes", Path("/srv", WithMarker("../etc/passwd")), `logon.Path: WithMarker: marker "../etc/passwd" is not a local path inside the directory`},
		{"path marker absolute", Path("/srv", WithMarker("/etc/passwd")), `logon.Path: WithMarker: marker "/etc/passwd" is not a local path inside the directory`},
		{"path marker empty", Path("/srv", WithMarker("")), `logon.Path: WithMarker: marker "" is not a local path inside the directory`},
		{"path client", Path("/srv", WithClient(http.DefaultClient)), "logon.Path: WithClient: does not apply to Path checks"},
		{"func no name", Func("", f), "logon.Func: name: empty name"},
		{"func nil", Func("f", nil), "logon.Func: f: nil function"},
		{"func status", Func("f", f, WithStatus(200)), "logon.Func: WithStatus: does not apply to Func checks"},
		{"func negative timeout", Func("f", f, WithTimeout(-1)), "logon.Func: WithTimeout: negative timeout -1ns"},
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NotNil(t, tt.check)
			err := tt.check(context.Background())
			require.Error(t, err)
			require.ErrorIs(t, err, ErrConfig)
			var ce *ConfigError
			require.True(t, errors.As(err, &ce))
			require.Same(t, ce, err, "the error is the *ConfigError itself")
			require.Equal(t, tt.wantMsg, err.Error())
			var che *CheckError
			require.False(t, errors.As(err, &che), "a configuration error is not a server failure")

			// The same error on every call, whatever the context.
			for _, ctx := range []context.Context{context.Background(), canceled, expired} {
				require.Same(t, ce, tt.check(ctx))
			}
			require.Same(t, ce, configFailure(tt.check))

			// NewList refuses it, naming the server.
			_, lerr := NewList([]Server{{Name: "ok", Check: f}, {Name: "bad", Check: tt.check}})
			require.ErrorIs(t, lerr, ErrConfig)
			require.ErrorIs(t, lerr, ce)
			require.Equal(t, `logon.NewList: servers: server "bad": `+tt.wantMsg, lerr.Error())
		})
	}
	require.Zero(t, hits.n.Load(), "a misconfigured HTTP check sent a request")
	require.Zero(t, calls.Load(), "a misconfigured Func check called its function")
	tcp.requireNoOtherConns(t)
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

// TestValidOptions: well-formed checks are not mistaken for misconfigured
// ones, and a call with a canceled context, the documented way to validate
// a lone check eagerly, returns KindCanceled without touching the network.
func TestValidOptions(t *testing.T) {
	checks := []Check{
		HTTP("https://logon1.example/health",
			WithTimeout(0), WithStatus(200, 204), WithBodyMatch(`ready`), WithClient(&http.Client{}), WithBodyLimit(1024)),
		Path(`/srv/sms/inst`, WithMarker("INSTRUCTIONS.txt"), WithTimeout(time.Second)),
		Path(`\\logon1\sms\inst`),
		TCP("[::1]:445", WithTimeout(time.Second)),
		Func("f", func(context.Context) error { return errors.New("called") }, WithTimeout(time.Second)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i, c := range checks {
		require.NotNil(t, c, "check %d", i)
		require.NoError(t, configFailure(c), "check %d", i)
		err := c(ctx)
		require.NotErrorIs(t, err, ErrConfig, "check %d", i)
		requireKind(t, err, KindCanceled)
	}
	_, err := NewList([]Server{{"a", checks[0]}, {"b", checks[1]}, {"c", checks[3]}, {"d", checks[4]}})
	require.NoError(t, err)
}

// TestWrappedConfigFailure: NewList recognizes only the checks built by
// this package, as documented; a misconfigured check wrapped in a function
// of the caller's still fails with its *ConfigError when it runs.
func TestWrappedConfigFailure(t *testing.T) {
	bad := TCP("no-port")
	wrapped := func(ctx context.Context) error { return bad(ctx) }
	l, err := NewList([]Server{{Name: "w", Check: wrapped}})
	require.NoError(t, err)
	err = l.Check(context.Background())
	require.ErrorIs(t, err, ErrConfig)
	require.Contains(t, err.Error(), "logon.TCP: addr: address no-port: missing port in address")
}
