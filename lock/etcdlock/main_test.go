package etcdlock_test

import (
	"flag"
	"fmt"
	"hash/fnv"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/etcdlock"
	"github.com/agentlock/agentlock/lock/locktest"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

// envEndpoint passes the embedded server's client URL to child
// processes, which inherit the environment.
const envEndpoint = "AGENTLOCK_ETCD_TEST_ENDPOINT"

// envFsync=1 makes the embedded server fsync its log, as a real one
// does (the benchmarks report both); the tests run without.
const envFsync = "AGENTLOCK_ETCD_TEST_FSYNC"

// envLog sets the embedded server's log level (default fatal).
const envLog = "AGENTLOCK_ETCD_TEST_LOG"

func TestMain(m *testing.M) {
	locktest.Register(suiteBackend)
	registerRoles()
	proctest.Dispatch()

	flag.Parse()
	stop, err := startEtcd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcdlock test: starting etcd:", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

// startEtcd starts an embedded single-member etcd on free loopback
// ports with a data directory of its own, and sets envEndpoint.
func startEtcd() (stop func(), err error) {
	start := time.Now()
	dir, err := os.MkdirTemp("", "etcdlock-test-")
	if err != nil {
		return nil, err
	}
	cu, err := freeURL()
	if err != nil {
		return nil, err
	}
	pu, err := freeURL()
	if err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Name = "test"
	cfg.Dir = dir
	cfg.TickMs = 10
	cfg.ElectionMs = 50
	cfg.ListenClientUrls = []url.URL{*cu}
	cfg.AdvertiseClientUrls = []url.URL{*cu}
	cfg.ListenPeerUrls = []url.URL{*pu}
	cfg.AdvertisePeerUrls = []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// The server logs errors that are not (a storage version it
	// cannot detect right after start, listeners closed by Close).
	cfg.LogLevel = "fatal"
	if lv := os.Getenv(envLog); lv != "" {
		cfg.LogLevel = lv
	}
	cfg.LogOutputs = []string{"stderr"}
	cfg.UnsafeNoFsync = os.Getenv(envFsync) != "1"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		e.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("not ready after 30s")
	}
	os.Setenv(envEndpoint, cu.String())
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "etcdlock test: embedded etcd at %s ready in %v (fsync %v)\n", cu, time.Since(start), !cfg.UnsafeNoFsync)
	}
	return func() {
		if c := sharedClient; c != nil {
			c.Close()
		}
		e.Close()
		os.RemoveAll(dir)
	}, nil
}

func freeURL() (*url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	return url.Parse("http://" + addr)
}

var (
	clientOnce   sync.Once
	sharedClient *clientv3.Client
	clientErr    error
)

// client returns this process's client of the test server.
func client() (*clientv3.Client, error) {
	clientOnce.Do(func() {
		ep := os.Getenv(envEndpoint)
		if ep == "" {
			clientErr = fmt.Errorf("%s not set", envEndpoint)
			return
		}
		sharedClient, clientErr = clientv3.New(clientv3.Config{
			Endpoints:   []string{ep},
			DialTimeout: 10 * time.Second,
			Logger:      zap.NewNop(),
		})
	})
	return sharedClient, clientErr
}

// prefixFor gives every scratch directory its own key prefix, so the
// suite's tests (which reuse lock names) do not see each other's locks.
func prefixFor(dir string) string {
	h := fnv.New64a()
	h.Write([]byte(dir))
	return fmt.Sprintf("agentlock-test/%016x/", h.Sum64())
}

// suiteTTL is the session TTL of the conformance suite: short, so that
// HolderKilled is quick, and long enough that a process starved of CPU
// by the Stress test (8 processes, -race, 2 cores) keeps its session.
const suiteTTL = 3 * time.Second

func suiteBackend(dir string) (lock.Backend, error) {
	c, err := client()
	if err != nil {
		return nil, err
	}
	return etcdlock.New(c, etcdlock.WithPrefix(prefixFor(dir)), etcdlock.WithTTL(suiteTTL))
}

// TestConformance runs the shared suite. Its Stress test takes the
// lock 8×250 times: each acquisition is a few round trips to etcd, and
// 8×2000 would take minutes under -race on two cores.
func TestConformance(t *testing.T) {
	locktest.RunWith(t, suiteBackend, locktest.Options{StressRounds: 250})
}

// newBackend returns a backend on a fresh prefix (see prefixFor),
// closed at the end of the test, and the prefix.
func newBackend(t testing.TB, opts ...etcdlock.Option) (*etcdlock.Backend, string) {
	t.Helper()
	prefix := prefixFor(proctest.TempDir(t))
	return newBackendAt(t, prefix, opts...), prefix
}

// newBackendAt returns a backend on prefix, closed at the end of the
// test.
func newBackendAt(t testing.TB, prefix string, opts ...etcdlock.Option) *etcdlock.Backend {
	t.Helper()
	c, err := client()
	if err != nil {
		t.Fatal(err)
	}
	b, err := etcdlock.New(c, append([]etcdlock.Option{etcdlock.WithPrefix(prefix)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
