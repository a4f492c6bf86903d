package record

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// constToken returns a PublishFrom token function that issues t.
func constToken(t uint64) func(uint32, uint64, bool) (uint64, error) {
	return func(uint32, uint64, bool) (uint64, error) { return t, nil }
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
	err := p.PublishFrom(&tmpl, &other, &rel, func(seq uint32, last uint64, ours bool) (uint64, error) {
		assert.Equal(t, r.Token, last)
		assert.True(t, ours)
		s, _ := p.Seq()
		assert.Equal(t, s, seq)
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
