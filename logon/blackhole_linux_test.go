package logon

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// blackholeTCP returns a loopback address whose connection attempts are
// never answered: a socket listening with a backlog of 0 that never
// accepts, its queue filled with connections that stay open. Further SYNs
// are dropped, so a dial hangs until its deadline, as it does against a
// host that has gone away. The test is skipped when the kernel does not
// behave that way.
func blackholeTCP(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { syscall.Close(fd) })
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, syscall.Listen(fd, 0))
	sa, err := syscall.Getsockname(fd)
	require.NoError(t, err)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for range 16 {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		cancel()
		if err != nil {
			t.Logf("backlog full; %s is a black hole", addr)
			return addr
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("cannot fill the listen backlog on this kernel; no TCP black hole")
	return ""
}

func TestTCPBlackholeTimeout(t *testing.T) {
	addr := blackholeTCP(t)
	check := tcpCheck(t, addr, WithTimeout(200*time.Millisecond))
	start := time.Now()
	err := check(context.Background())
	t.Logf("returned after %v", time.Since(start))
	ce := requireKind(t, err, KindTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, "logon server "+addr+": no answer within 200ms", ce.Error())
	require.Less(t, time.Since(start), promptly)
}
