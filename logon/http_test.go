package logon

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func httpCheck(t *testing.T, url string, opts ...HTTPOption) Check {
	t.Helper()
	return validCheck(t)(HTTP(url, opts...))
}

func TestHTTPLive(t *testing.T) {
	var hits counter
	srv := httptest.NewServer(&hits)
	defer srv.Close()
	require.NoError(t, httpCheck(t, srv.URL)(context.Background()))
	require.EqualValues(t, 1, hits.n.Load())
}

func TestHTTPRefused(t *testing.T) {
	url := "http://" + refusedAddr(t) + "/health"
	ce := requireKind(t, httpCheck(t, url)(context.Background()), KindRefused)
	require.Equal(t, "logon server "+url+": connection refused", ce.Error())
}

func TestHTTPUnresolvable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), promptly)
	defer cancel()
	requireKind(t, httpCheck(t, "http://logon1.invalid/health")(ctx), KindDNS)
	require.NoError(t, ctx.Err(), "a .invalid name must fail at once, not at the deadline")
}

func TestHTTPBlackholeTimeout(t *testing.T) {
	srv := blockingServer(t)
	start := time.Now()
	err := httpCheck(t, srv.URL, WithTimeout(200*time.Millisecond))(context.Background())
	t.Logf("returned after %v", time.Since(start))
	ce := requireKind(t, err, KindTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, "logon server "+srv.URL+": no answer within 200ms", ce.Error())
	require.Less(t, time.Since(start), promptly)
}

func TestHTTPContextDeadline(t *testing.T) {
	srv := blockingServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	ce := requireKind(t, httpCheck(t, srv.URL)(ctx), KindTimeout)
	require.Contains(t, ce.Error(), "no answer before the context deadline")
}

func TestHTTPCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel() // the request is in flight: the caller gives up
		<-r.Context().Done()
	}))
	defer srv.Close()
	err := httpCheck(t, srv.URL)(ctx)
	requireKind(t, err, KindCanceled)
	require.ErrorIs(t, err, context.Canceled)
}

func TestHTTPSlowButInTime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Millisecond) // a slow server, well within the timeout
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	require.NoError(t, httpCheck(t, srv.URL, WithTimeout(promptly))(context.Background()))
}

func TestHTTPStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/down":
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Write([]byte("ok"))
		}
	}))
	defer srv.Close()

	ce := requireKind(t, httpCheck(t, srv.URL+"/down")(context.Background()), KindHTTPStatus)
	require.Equal(t, "logon server "+srv.URL+"/down: HTTP status 503 Service Unavailable, want 2xx", ce.Error())

	require.NoError(t, httpCheck(t, srv.URL+"/empty")(context.Background()), "204 is a 2xx")
	requireKind(t, httpCheck(t, srv.URL+"/", WithStatus(204))(context.Background()), KindHTTPStatus)
	require.NoError(t, httpCheck(t, srv.URL+"/down", WithStatus(200, 503))(context.Background()))
	ce = requireKind(t, httpCheck(t, srv.URL+"/empty", WithStatus(200, 202))(context.Background()), KindHTTPStatus)
	require.Contains(t, ce.Error(), "want one of 200, 202")
}

func TestHTTPBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The client stops reading after the body limit and closes the
		// connection, which must fail this write. Under Wine it
		// sometimes does not, and the handler, and with it srv.Close,
		// would block for ever: bound the write.
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(2 * time.Second))
		w.Write([]byte(`{"status":"ready","version":"7.1"}`))
		w.Write([]byte(strings.Repeat(" ", 1<<20))) // a large tail, cut by the body limit
	}))
	defer srv.Close()
	ctx := context.Background()

	require.NoError(t, httpCheck(t, srv.URL, WithBodyContains(`"status":"ready"`))(ctx))
	ce := requireKind(t, httpCheck(t, srv.URL, WithBodyContains("maintenance"))(ctx), KindBodyMismatch)
	require.Equal(t, "logon server "+srv.URL+`: response body does not contain "maintenance"`, ce.Error())

	require.NoError(t, httpCheck(t, srv.URL, WithBodyMatch(`"version":"7\.\d+"`))(ctx))
	requireKind(t, httpCheck(t, srv.URL, WithBodyMatch(`"version":"8\.`))(ctx), KindBodyMismatch)

	// Only the first WithBodyLimit bytes are matched.
	requireKind(t, httpCheck(t, srv.URL, WithBodyLimit(10), WithBodyContains("ready"))(ctx), KindBodyMismatch)
}

func TestHTTPTLS(t *testing.T) {
	var hits counter
	srv := httptest.NewUnstartedServer(&hits)
	// The refused handshakes are expected; keep the server from logging them.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	ctx := context.Background()

	// Not trusting the test server's certificate: a typed TLS failure.
	ce := requireKind(t, httpCheck(t, srv.URL)(ctx), KindTLS)
	require.Contains(t, ce.Error(), "certificate")

	// Trusting it through the server's own client.
	require.NoError(t, httpCheck(t, srv.URL, WithClient(srv.Client()))(ctx))
	require.EqualValues(t, 1, hits.n.Load())
}

func TestHTTPSpokenToPlainServer(t *testing.T) {
	srv := httptest.NewServer(&counter{})
	defer srv.Close()
	err := httpCheck(t, "https://"+srv.Listener.Addr().String())(context.Background())
	requireKind(t, err, KindTLS)
}
