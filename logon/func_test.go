package logon

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFunc(t *testing.T) {
	ctx := context.Background()
	require.NoError(t, funcCheck(t, "ok", func(context.Context) error { return nil })(ctx))

	ce := requireKind(t, funcCheck(t, "custom", func(context.Context) error { return errors.New("license expired") })(ctx), KindOther)
	require.Equal(t, "logon server custom: check failed: license expired", ce.Error())

	// Errors of known shapes are classified like the built-in checks'.
	requireKind(t, funcCheck(t, "fs", func(context.Context) error {
		_, err := os.Stat("/nonexistent/logon")
		return err
	})(ctx), KindNotFound)
	requireKind(t, funcCheck(t, "dns", func(context.Context) error {
		return &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}
	})(ctx), KindDNS)

	// A *CheckError is passed through unchanged.
	want := &CheckError{Server: "inner", Kind: KindPermission}
	require.Same(t, want, funcCheck(t, "outer", func(context.Context) error { return want })(ctx))
}

func TestFuncTimeout(t *testing.T) {
	check := funcCheck(t, "stuck", func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}, WithTimeout(200*time.Millisecond))
	start := time.Now()
	ce := requireKind(t, check(context.Background()), KindTimeout)
	require.Less(t, time.Since(start), promptly)
	require.Equal(t, "logon server stuck: no answer within 200ms", ce.Error())
}

func TestFuncSatisfiesPreconditionShape(t *testing.T) {
	// The lock package takes an unnamed func(context.Context) error; a
	// Check and a Validation's method value must both be assignable to it.
	var precondition func(context.Context) error
	precondition = funcCheck(t, "x", func(context.Context) error { return nil })
	require.NoError(t, precondition(context.Background()))
	l, err := NewList([]Server{{Name: "x", Check: precondition}})
	require.NoError(t, err)
	precondition = l.Validation().Check
	require.NoError(t, precondition(context.Background()))
	precondition = l.Check
	require.NoError(t, precondition(context.Background()))
}
