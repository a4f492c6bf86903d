package logon

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigErrors(t *testing.T) {
	ok := func(context.Context) error { return nil }
	tests := []struct {
		name    string
		build   func() error
		wantMsg string
	}{
		{"tcp no port", func() error { _, err := TCP("10.0.0.5"); return err }, "logon.TCP: addr: address 10.0.0.5: missing port in address"},
		{"tcp empty port", func() error { _, err := TCP("10.0.0.5:"); return err }, "logon.TCP: addr: missing port in 10.0.0.5:"},
		{"tcp no host", func() error { _, err := TCP(":445"); return err }, "logon.TCP: addr: missing host in :445"},
		{"tcp negative timeout", func() error { _, err := TCP("h:1", WithTimeout(-time.Second)); return err }, "logon.TCP: WithTimeout: negative timeout -1s"},
		{"tcp http option", func() error { _, err := TCP("h:1", WithStatus(200)); return err }, "logon.TCP: WithStatus: does not apply to TCP checks"},
		{"tcp marker option", func() error { _, err := TCP("h:1", WithMarker("x")); return err }, "logon.TCP: WithMarker: does not apply to TCP checks"},
		{"zero option", func() error { _, err := TCP("h:1", Option{}); return err }, "logon.TCP: option 0: zero Option value"},
		{"http bad scheme", func() error { _, err := HTTP("ftp://h/x"); return err }, `logon.HTTP: url: scheme "ftp" is not http or https`},
		{"http relative", func() error { _, err := HTTP("/health"); return err }, `logon.HTTP: url: scheme "" is not http or https`},
		{"http no host", func() error { _, err := HTTP("http:///health"); return err }, "logon.HTTP: url: missing host in http:///health"},
		{"http unparsable", func() error { _, err := HTTP("http://h/%zz"); return err }, `logon.HTTP: url: parse "http://h/%zz": invalid URL escape "%zz"`},
		{"http status range", func() error { _, err := HTTP("http://h", WithStatus(200, 99)); return err }, "logon.HTTP: WithStatus: status code 99 out of range 100..599"},
		{"http no status", func() error { _, err := HTTP("http://h", WithStatus()); return err }, "logon.HTTP: WithStatus: no status codes"},
		{"http bad regexp", func() error { _, err := HTTP("http://h", WithBodyMatch("(")); return err }, "logon.HTTP: WithBodyMatch: error parsing regexp: missing closing ): `(`"},
		{"http empty contains", func() error { _, err := HTTP("http://h", WithBodyContains("")); return err }, "logon.HTTP: WithBodyContains: empty string"},
		{"http both matchers", func() error { _, err := HTTP("http://h", WithBodyContains("a"), WithBodyMatch("b")); return err }, "logon.HTTP: WithBodyMatch: cannot be combined with WithBodyContains"},
		{"http nil client", func() error { _, err := HTTP("http://h", WithClient(nil)); return err }, "logon.HTTP: WithClient: nil *http.Client"},
		{"http body limit", func() error { _, err := HTTP("http://h", WithBodyLimit(0)); return err }, "logon.HTTP: WithBodyLimit: non-positive limit 0"},
		{"http marker", func() error { _, err := HTTP("http://h", WithMarker("x")); return err }, "logon.HTTP: WithMarker: does not apply to HTTP checks"},
		{"path empty", func() error { _, err := Path(""); return err }, "logon.Path: path: empty path"},
		{"path NUL", func() error { _, err := Path("a\x00b"); return err }, "logon.Path: path: path contains a NUL byte"},
		{"path marker escapes", func() error { _, err := Path("/srv", WithMarker("../etc/passwd")); return err }, `logon.Path: WithMarker: marker "../etc/passwd" is not a local path inside the directory`},
		{"path marker absolute", func() error { _, err := Path("/srv", WithMarker("/etc/passwd")); return err }, `logon.Path: WithMarker: marker "/etc/passwd" is not a local path inside the directory`},
		{"path marker empty", func() error { _, err := Path("/srv", WithMarker("")); return err }, `logon.Path: WithMarker: marker "" is not a local path inside the directory`},
		{"path client", func() error { _, err := Path("/srv", WithClient(http.DefaultClient)); return err }, "logon.Path: WithClient: does not apply to Path checks"},
		{"func no name", func() error { _, err := Func("", ok); return err }, "logon.Func: name: empty name"},
		{"func nil", func() error { _, err := Func("f", nil); return err }, "logon.Func: f: nil function"},
		{"func status", func() error { _, err := Func("f", ok, WithStatus(200)); return err }, "logon.Func: WithStatus: does not apply to Func checks"},
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

func TestValidOptions(t *testing.T) {
	_, err := HTTP("https://logon1.example/health",
		WithTimeout(0), WithStatus(200, 204), WithBodyMatch(`ready`), WithClient(&http.Client{}), WithBodyLimit(1024))
	require.NoError(t, err)
	_, err = Path(`/srv/sms/inst`, WithMarker("INSTRUCTIONS.txt"), WithTimeout(time.Second))
	require.NoError(t, err)
	_, err = TCP("[::1]:445", WithTimeout(time.Second))
	require.NoError(t, err)
}
