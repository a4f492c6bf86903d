package logon

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTCPLive(t *testing.T) {
	check := tcpCheck(t, liveTCP(t))
	require.NoError(t, check(context.Background()))
}

func TestTCPRefused(t *testing.T) {
	addr := refusedAddr(t)
	check := tcpCheck(t, addr)
	ce := requireKind(t, check(context.Background()), KindRefused)
	require.Equal(t, addr, ce.Server)
	require.Equal(t, "logon server "+addr+": connection refused", ce.Error())
}

func TestTCPUnresolvable(t *testing.T) {
	check := tcpCheck(t, "logon1.invalid:445", WithTimeout(0))
	ctx, cancel := context.WithTimeout(context.Background(), promptly)
	defer cancel()
	ce := requireKind(t, check(ctx), KindDNS)
	require.Contains(t, ce.Error(), `cannot resolve host "logon1.invalid"`)
	require.NoError(t, ctx.Err(), "a .invalid name must fail at once, not at the deadline")
}

func TestTCPCanceledContext(t *testing.T) {
	check := tcpCheck(t, liveTCP(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	requireKind(t, check(ctx), KindCanceled)
	require.ErrorIs(t, check(ctx), context.Canceled)
}

func TestTCPExpiredContext(t *testing.T) {
	check := tcpCheck(t, liveTCP(t))
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	requireKind(t, check(ctx), KindTimeout)
}
