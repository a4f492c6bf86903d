package logon

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/internal/recheck"
)

// A check that panics inside a List is a failure of that server, not a
// crash of the program (it runs on the List's goroutine, where the
// caller's recover cannot reach it).
func TestListCheckPanics(t *testing.T) {
	for _, st := range []Strategy{Failover, FirstToAnswer} {
		boom := must(Func("boom", func(context.Context) error { panic("nil map") }))
		l, err := NewList([]Server{{Name: "boom", Check: boom}}, WithStrategy(st), WithFailureTTL(0))
		require.NoError(t, err)
		err = l.Check(context.Background())
		require.Error(t, err, "%v", st)
		assert.Contains(t, err.Error(), "panicked: nil map")
	}
}

// The re-check of a Validation (lock.WithRecheck's, after locking, whose
// context the lock package marks) asks the validated server again, not
// the List's cache.
func TestValidationRecheckProbes(t *testing.T) {
	var hits counter
	srv := httptest.NewServer(&hits)
	defer srv.Close()
	l, err := NewList([]Server{{Name: "a", Check: must(HTTP(srv.URL))}}, WithSuccessTTL(time.Hour))
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, l.Check(ctx)) // fills the cache
	require.EqualValues(t, 1, hits.n.Load())
	v := l.Validation()
	require.NoError(t, v.Check(ctx)) // from the cache
	assert.EqualValues(t, 1, hits.n.Load())
	require.NoError(t, v.Check(ctx)) // another acquisition: the cache again
	assert.EqualValues(t, 1, hits.n.Load())
	require.NoError(t, v.Check(recheck.With(ctx))) // the re-check
	assert.EqualValues(t, 2, hits.n.Load(), "the re-check must probe the server")

	srv.Close() // the server goes away between check and use
	err = v.Check(recheck.With(ctx))
	require.Error(t, err)
	assert.True(t, errors.Is(err, KindRefused) || errors.Is(err, KindUnreachable), "%v", err)
	_, ok := v.Server()
	assert.False(t, ok)
}

// A caller that joins a probe started by a caller with a shorter
// deadline gets the server's answer, not the other caller's timeout.
func TestSharedProbeKeepsEachDeadline(t *testing.T) {
	arrived := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		time.Sleep(300 * time.Millisecond) // a slow server
		w.Write([]byte("ok"))
	}))
	defer slow.Close()
	l, err := NewList([]Server{{Name: "slow", Check: must(HTTP(slow.URL))}})
	require.NoError(t, err)
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	first := make(chan error, 1)
	go func() { first <- l.Check(short) }()
	<-arrived // the first caller's probe is running
	long, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	require.NoError(t, l.Check(long), "the second caller had time enough")
	require.Error(t, <-first)
}
