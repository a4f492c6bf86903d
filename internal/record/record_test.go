package record

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sample() Record {
	return Record{State: Held, Token: 1 << 60, PID: 4242, Start: 99, Since: 1700000000123456789,
		Boot: [16]byte{1, 2, 3}, Host: "build-7", Purpose: "installing Office 97"}
}

func TestRoundTrip(t *testing.T) {
	for _, r := range []Record{{}, sample(), {State: Released, Token: 1}, {State: Held, Host: strings.Repeat("h", MaxHost), Purpose: strings.Repeat("é", MaxPurpose/2)}} {
		b := make([]byte, Size)
		require.NoError(t, Encode(b, &r))
		got, err := Decode(b)
		require.NoError(t, err)
		assert.Equal(t, r, got)
	}
}

func TestEncodeRefuses(t *testing.T) {
	b := make([]byte, Size)
	for _, r := range []Record{
		{State: Held, Host: strings.Repeat("h", MaxHost+1)},
		{State: Held, Purpose: strings.Repeat("p", MaxPurpose+1)},
		{State: Held, Purpose: "a\x00b"},
		{State: Held, Purpose: "\xff"},
		{State: 7},
		{State: Empty, Token: 3},
	} {
		assert.Error(t, Encode(b, &r), "%+v", r)
	}
}

func TestDecodeDetectsDamage(t *testing.T) {
	r := sample()
	good := make([]byte, Size)
	require.NoError(t, Encode(good, &r))
	for i := 0; i < Size; i++ {
		for _, bit := range []byte{1, 0x80} {
			b := bytes.Clone(good)
			b[i] ^= bit
			_, err := Decode(b)
			assert.ErrorIs(t, err, ErrCorrupt, "flip of bit %#x in byte %d not detected", bit, i)
		}
	}
	_, err := Decode(good[:Size-1])
	assert.ErrorIs(t, err, ErrCorrupt)
}

func TestPage(t *testing.T) {
	buf := make([]uint64, PageSize/8) // 8-byte aligned
	b := unsafeBytes(buf)
	p := NewPage(b)
	r, err := p.Load()
	require.NoError(t, err)
	assert.Equal(t, Record{}, r)
	want := sample()
	require.NoError(t, p.Store(&want))
	r, err = p.Load()
	require.NoError(t, err)
	assert.Equal(t, want, r)

	set, err := p.TakeWaiting()
	require.NoError(t, err)
	assert.False(t, set)
	require.NoError(t, p.SetWaiting())
	set, _ = p.TakeWaiting()
	assert.True(t, set)
	set, _ = p.TakeWaiting()
	assert.False(t, set)

	copy(b, "NOTOURS!")
	_, err = p.Load()
	assert.True(t, errors.Is(err, ErrCorrupt))
}

// FuzzDecode: any body either decodes to a record that encodes back to
// the same bytes, or is reported as corrupt. Never a panic.
func FuzzDecode(f *testing.F) {
	r := sample()
	good := make([]byte, Size)
	Encode(good, &r)
	f.Add(good)
	f.Add(make([]byte, Size))
	f.Add([]byte("short"))
	rel := Record{State: Released, Token: 5, Purpose: "querying"}
	b := make([]byte, Size)
	Encode(b, &rel)
	f.Add(b)
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := Decode(body)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not match ErrCorrupt", err)
			}
			return
		}
		out := make([]byte, Size)
		if err := Encode(out, &r); err != nil {
			t.Fatalf("decoded %+v does not encode: %v", r, err)
		}
		if !bytes.Equal(out, body) {
			t.Fatalf("decode/encode changed the bytes")
		}
	})
}

// TestDeadWriter: a writer that died with the sequence odd leaves the
// page readable after a bounded wait: the record if its write had
// finished, ErrCorrupt if not. The highest token survives either way.
func TestDeadWriter(t *testing.T) {
	buf := make([]uint64, PageSize/8)
	b := unsafeBytes(buf)
	p := NewPage(b)
	want := sample()
	require.NoError(t, p.Store(&want))
	*p.seq() |= 1 // died after writing, before closing the sequence
	r, err := p.Load()
	require.NoError(t, err)
	assert.Equal(t, want, r)

	b[bodyOff+200] ^= 0xff // died in the middle of the body
	_, err = p.Load()
	assert.ErrorIs(t, err, ErrCorrupt)
	_, _, err = p.Peek()
	assert.ErrorIs(t, err, ErrCorrupt)
	last, ours, err := p.LastToken()
	require.NoError(t, err)
	assert.True(t, ours)
	assert.Equal(t, want.Token, last)

	// The next holder's write repairs the page.
	next := sample()
	next.Token++
	require.NoError(t, p.Store(&next))
	r, err = p.Load()
	require.NoError(t, err)
	assert.Equal(t, next, r)
}
