package logon_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/locktest/proctest"
	"github.com/agentlock/agentlock/logon"
)

// The constructors' results plug straight into lock.WithPrecondition
// without an adapter: these lines fail to compile otherwise. Only this
// test imports lock; package logon does not.
var (
	_ = lock.WithPrecondition(logon.TCP("127.0.0.1:1"))
	_ = lock.WithPrecondition(logon.HTTP("https://logon1/health"))
	_ = lock.WithPrecondition(logon.Path(`\\logon1\sms\inst`))
	_ = lock.WithPrecondition(logon.Func("f", func(context.Context) error { return nil }))
	_ = lock.WithPrecondition((*logon.Validation)(nil).Check)
	_ = lock.WithPrecondition((*logon.List)(nil).Check)
)

// A misconfigured check used as a precondition locks nothing, and the
// error says what is wrong with the configuration.
func TestMisconfiguredPreconditionLocksNothing(t *testing.T) {
	dir := proctest.TempDir(t)
	c, err := lock.New("logon-precondition", lock.WithDir(dir),
		lock.WithPrecondition(logon.TCP("10.0.0.5", logon.WithTimeout(-1))))
	require.NoError(t, err)

	_, err = c.TryAcquire(context.Background())
	require.ErrorIs(t, err, lock.ErrPrecondition)
	require.ErrorIs(t, err, logon.ErrConfig)
	var ce *logon.ConfigError
	require.True(t, errors.As(err, &ce))
	require.Equal(t, "logon.TCP: addr: address 10.0.0.5: missing port in address", ce.Error())

	_, err = c.Holder(context.Background())
	require.ErrorIs(t, err, lock.ErrNotHeld)
}
