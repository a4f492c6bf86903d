package record

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestArmTakeWake: the one-touch methods keep the protocol of the
// single steps. A release wakes only when a sleeper armed, and skips
// (leaving the flag for the next release) while a woken sleeper has not
// yet armed again.
func TestArmTakeWake(t *testing.T) {
	p := NewPage(unsafeBytes(make([]uint64, PageSize/8)))
	wake, err := p.TakeWake()
	require.NoError(t, err)
	assert.False(t, wake, "nobody armed")

	s0, err := p.Arm()
	require.NoError(t, err)
	wake, _ = p.TakeWake()
	assert.True(t, wake)
	s1, _ := p.WakeSeq()
	assert.Equal(t, s0+1, s1, "a wake-up bumps the sequence")

	// The woken sleeper has not armed again; a second sleeper arms
	// without clearing woken (SetWaiting only).
	require.NoError(t, p.SetWaiting())
	wake, _ = p.TakeWake()
	assert.False(t, wake, "a woken sleeper is on its way")
	set, _ := p.TakeWaiting()
	assert.True(t, set, "the flag is left for the next release")

	// The woken sleeper arms: woken clears, the next release wakes.
	s2, _ := p.Arm()
	assert.Equal(t, s1, s2)
	wake, _ = p.TakeWake()
	assert.True(t, wake)
}

// TestStoreEncoded: a body encoded earlier stores like Store: same
// record, the token kept apart, a new sequence.
func TestStoreEncoded(t *testing.T) {
	p := NewPage(unsafeBytes(make([]uint64, PageSize/8)))
	held := sample()
	require.NoError(t, p.Store(&held))
	rel := held
	rel.State = Released
	var body [Size]byte
	require.NoError(t, Encode(body[:], &rel))
	s0, _ := p.sequence()
	require.NoError(t, p.StoreEncoded(&body, rel.Token))
	got, err := p.Load()
	require.NoError(t, err)
	assert.Equal(t, rel, got)
	s1, _ := p.sequence()
	assert.Equal(t, s0+2, s1)
	tok, ours, _ := p.LastToken()
	assert.True(t, ours)
	assert.Equal(t, rel.Token, tok)

	// On a fresh page it writes the header and the token too.
	q := NewPage(unsafeBytes(make([]uint64, PageSize/8)))
	require.NoError(t, q.StoreEncoded(&body, rel.Token))
	got, err = q.Load()
	require.NoError(t, err)
	assert.Equal(t, rel, got)
	tok, ours, _ = q.LastToken()
	assert.True(t, ours)
	assert.Equal(t, rel.Token, tok)
}

// TestStoreHeld: StoreHeld stores the record, and its released twin
// stored with StoreEncoded reads back as the record in state Released.
func TestStoreHeld(t *testing.T) {
	p := NewPage(unsafeBytes(make([]uint64, PageSize/8)))
	held := sample()
	held.State = Held
	var rel [Size]byte
	require.NoError(t, p.StoreHeld(&held, &rel))
	got, err := p.Load()
	require.NoError(t, err)
	assert.Equal(t, held, got)
	require.NoError(t, p.StoreEncoded(&rel, held.Token))
	got, err = p.Load()
	require.NoError(t, err)
	want := held
	want.State = Released
	assert.Equal(t, want, got)

	bad := held
	bad.Host = "\xff"
	assert.Error(t, p.StoreHeld(&bad, &rel), "an invalid record is refused")
}
