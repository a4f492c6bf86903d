package record

import (
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// constToken returns a PublishFrom token function that issues t.
func constToken(t uint64) func(uint64, bool, bool) (uint64, error) {
	return func(uint64, bool, bool) (uint64, error) { return t, nil }
}

// TestPublishFrom checks that a record stored through a template, and
// the released record it prepares, are byte for byte what Encode makes,
// as the holder, the token and the time change.
func TestPublishFrom(t *testing.T) {
	p := NewPage(unsafeBytes(make([]uint64, PageSize/8)))
	var tmpl Template
	var rel [Size]byte
	long := Record{State: Held, PID: math.MaxInt64, Start: math.MaxUint64, Boot: [16]byte{0: 0xff, 15: 0xff},
		Host: strings.Repeat("h", MaxHost), Purpose: strings.Repeat("é", MaxPurpose/2)}
	holders := []Record{sample(), {State: Held, PID: 1}, long, sample()}
	holders[3].Purpose = "uninstalling"
	times := []struct {
		token uint64
		since int64
	}{{1, 0}, {1 << 60, 1700000000123456789}, {math.MaxUint64 - 1, -1}, {0x0102030405060708, math.MinInt64}}
	for _, h := range holders {
		for _, tm := range times {
			r := h
			r.Token, r.Since = 0, tm.since
			require.NoError(t, p.PublishFrom(&tmpl, &r, &rel, constToken(tm.token)))
			require.Equal(t, tm.token, r.Token)
			last, ours, err := p.LastToken()
			require.NoError(t, err)
			assert.True(t, ours)
			assert.GreaterOrEqual(t, last, tm.token)

			want := make([]byte, Size)
			require.NoError(t, Encode(want, &r))
			assert.Equal(t, want, p.b[bodyOff:bodyOff+Size], "held %+v", r)
			got, err := p.Load()
			require.NoError(t, err)
			assert.Equal(t, r, got)

			r.State = Released
			require.NoError(t, Encode(want, &r))
			assert.Equal(t, want, rel[:], "released %+v", r)
		}
	}
}

// TestPublishFromRefuses checks that a record Store refuses is refused
// through a template too, as is one whose token function fails, and
// that either leaves the page as it was.
func TestPublishFromRefuses(t *testing.T) {
	p := NewPage(unsafeBytes(make([]uint64, PageSize/8)))
	var tmpl Template
	var rel [Size]byte
	r := sample()
	require.NoError(t, p.PublishFrom(&tmpl, &r, &rel, constToken(r.Token)))
	before := append([]byte(nil), p.b...)
	for _, bad := range []Record{
		{State: Held, Host: strings.Repeat("h", MaxHost+1)},
		{State: Held, Purpose: "a\x00b"},
		{State: Held, Purpose: "\xff"},
		{State: Released, Token: 9},
	} {
		assert.Error(t, p.PublishFrom(&tmpl, &bad, &rel, constToken(5)), "%+v", bad)
		assert.Equal(t, before, p.b, "%+v", bad)
	}
	errNoToken := errors.New("no token")
	other := r
	other.Purpose = "something else"
	err := p.PublishFrom(&tmpl, &other, &rel, func(last uint64, ours, released bool) (uint64, error) {
		assert.Equal(t, r.Token, last)
		assert.True(t, ours)
		assert.False(t, released, "the record is a holder's")
		return 0, errNoToken
	})
	assert.Same(t, errNoToken, err)
	assert.Equal(t, before, p.b)
	r.Token++
	require.NoError(t, p.PublishFrom(&tmpl, &r, &rel, constToken(r.Token)))
	got, err := p.Load()
	require.NoError(t, err)
	assert.Equal(t, r, got)
}

// TestPublishFromSeesCleanRelease: PublishFrom's token function is told
// that the record is a clean release's exactly when a release (Store of
// a released record, or StoreEncoded) was the page's last write through
// this package: not on a fresh or zeroed page, not after a holder's
// record, not on a page written by something else, not after a release
// torn by a writer that died in it, and not when only the sequence
// number matches the mark.
func TestPublishFromSeesCleanRelease(t *testing.T) {
	p := NewPage(unsafeBytes(make([]uint64, PageSize/8)))
	var tmpl Template
	var rel [Size]byte
	released := func() bool {
		t.Helper()
		var got bool
		errPeek := errors.New("only looking")
		h := sample()
		err := p.PublishFrom(&tmpl, &h, &rel, func(_ uint64, _, r bool) (uint64, error) {
			got = r
			return 0, errPeek
		})
		require.ErrorIs(t, err, errPeek)
		return got
	}
	assert.False(t, released(), "a fresh page")

	r := sample()
	require.NoError(t, p.PublishFrom(&tmpl, &r, &rel, constToken(r.Token)))
	assert.False(t, released(), "a holder's record")
	require.NoError(t, p.StoreEncoded(&rel, r.Token))
	assert.True(t, released(), "after StoreEncoded")

	r.Token++
	require.NoError(t, p.Store(&r))
	assert.False(t, released(), "after Store of a held record")
	r.State = Released
	require.NoError(t, p.Store(&r))
	assert.True(t, released(), "after Store of a released record")

	// A release that died in the middle of its write: the sequence
	// number is odd.
	atomic.AddUint32(p.seq(), 1)
	assert.False(t, released(), "a write in progress")
	atomic.AddUint32(p.seq(), 1)
	assert.False(t, released(), "a write after the release")

	// A sequence number that came back round to the mark (2³¹ writes
	// later, by a program that leaves no mark): an acquisition since
	// the release raised the highest token past the mark's.
	require.NoError(t, p.Store(&r))
	mark := atomic.LoadUint32(p.seq())
	held := r
	held.State, held.Token = Held, r.Token+1
	require.NoError(t, p.Store(&held))
	atomic.StoreUint32(p.seq(), mark)
	assert.False(t, released(), "the sequence number back at the mark, the token not")
	atomic.StoreUint32(p.seq(), mark+2)
	r.Token = held.Token

	// A page zeroed under the holders (truncated and restored).
	require.NoError(t, p.Store(&r))
	assert.True(t, released())
	clear(p.b)
	assert.False(t, released(), "a zeroed page")
	copy(p.b[:8], magic)
	assert.False(t, released(), "a page another program wrote whole, with a zero sequence")

	// A page whose header is not this package's, whatever its words say.
	require.NoError(t, p.Store(&r))
	copy(p.b[:8], "NOTOURS!")
	assert.False(t, released(), "a foreign header")
}
