package logon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckErrorLiteral(t *testing.T) {
	err := &CheckError{Server: "10.0.0.5:445", Kind: KindRefused}
	require.Equal(t, "logon server 10.0.0.5:445: connection refused", err.Error())
	err = &CheckError{Server: `\\logon1\sms`, Kind: KindPermission, Err: fs.ErrPermission}
	require.Equal(t, `logon server \\logon1\sms: permission denied: permission denied`, err.Error())
	require.ErrorIs(t, err, KindPermission)
	require.ErrorIs(t, err, fs.ErrPermission)
	require.NotErrorIs(t, err, KindNotFound)
}

func TestKindSentinels(t *testing.T) {
	for k := KindOther; k <= KindPermission; k++ {
		err := &CheckError{Server: "s", Kind: k}
		require.ErrorIs(t, err, k, "kind %v", k)
		for j := KindOther; j <= KindPermission; j++ {
			if j != k {
				require.NotErrorIs(t, err, j, "kind %v matches %v", k, j)
			}
		}
		require.NotEmpty(t, k.String())
	}
	require.ErrorIs(t, &CheckError{Kind: KindTimeout}, context.DeadlineExceeded)
	require.ErrorIs(t, &CheckError{Kind: KindCanceled}, context.Canceled)
	require.NotErrorIs(t, &CheckError{Kind: KindRefused}, context.DeadlineExceeded)
	require.Equal(t, "logon.Kind(99)", Kind(99).String())
	require.Equal(t, "logon: connection refused", KindRefused.Error())
}

// TestKindAs: errors.As finds the Kind of the first failure, through an
// *AllFailedError and further wrapping.
func TestKindAs(t *testing.T) {
	err := fmt.Errorf("install: %w", &AllFailedError{Failures: []Failure{
		{Name: "a", Err: &CheckError{Server: "a", Kind: KindDNS}},
		{Name: "b", Err: &CheckError{Server: "b", Kind: KindRefused}}}})
	var k Kind
	require.True(t, errors.As(err, &k))
	require.Equal(t, KindDNS, k)
	require.ErrorIs(t, err, KindRefused)
	require.NotErrorIs(t, err, KindTLS)
	require.False(t, errors.As(errors.New("plain"), &k))
}

func TestAllFailedErrorSingle(t *testing.T) {
	err := &AllFailedError{Failures: []Failure{{Name: "a", Err: &CheckError{Server: "a", Kind: KindDNS}}}}
	require.Equal(t, "logon server a: host name not resolved", err.Error())
	require.True(t, errors.Is(err, KindDNS))
	// A check that names its server differently from the list is named
	// once, by the check; an error that names no server gets the list's
	// name.
	err = &AllFailedError{Failures: []Failure{{Name: "http://h", Err: &CheckError{Server: "http://h/health", Kind: KindRefused}}}}
	require.Equal(t, "logon server http://h/health: connection refused", err.Error())
	err = &AllFailedError{Failures: []Failure{
		{Name: "a", Err: &CheckError{Server: "a", Kind: KindRefused}},
		{Name: "b", Err: errors.New("broken")}}}
	require.Equal(t, "all 2 logon servers failed: logon server a: connection refused; logon server b: broken", err.Error())
}
