package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/lock/guarded"
)

// guardedDir returns a directory for guarded files (owned by the user,
// not writable by others).
func guardedDir(t *testing.T, lockDir string) string {
	d := filepath.Join(filepath.Dir(lockDir), "state")
	require.NoError(t, os.Mkdir(d, 0o755))
	return d
}

// cat prints a guarded file's payload after verifying it, with its token
// and lock name on standard error under -v, and refuses a damaged file.
func TestCat(t *testing.T) {
	dir := lockDir(t)
	path := filepath.Join(guardedDir(t, dir), "instructions")
	c := coordinator(t, dir, "pcm-install")
	g, err := guarded.Open(path, guarded.By(c))
	require.NoError(t, err)
	lease, err := c.Acquire(context.Background())
	require.NoError(t, err)
	require.NoError(t, g.Write(lease, []byte("install Office 97\n")))
	require.NoError(t, lease.Release())

	r := agentlock(t, "", "cat", path)
	assert.Equal(t, 0, r.code)
	assert.Equal(t, "install Office 97\n", r.stdout)
	assert.Empty(t, r.stderr)

	r = agentlock(t, "", "cat", "-v", path)
	assert.Equal(t, 0, r.code)
	assert.Equal(t, "install Office 97\n", r.stdout)
	assert.Equal(t, fmt.Sprintf("token %d\nlock pcm-install\n", lease.Token()), r.stderr)

	// One flipped bit in the payload.
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[len(b)-3] ^= 0x01
	require.NoError(t, os.WriteFile(path, b, 0o644))
	r = agentlock(t, "", "cat", "-v", path)
	assert.Equal(t, 1, r.code)
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, "corrupt")

	// Cut short.
	require.NoError(t, os.WriteFile(path, b[:50], 0o644))
	r = agentlock(t, "", "cat", path)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "corrupt")

	// Missing.
	r = agentlock(t, "", "cat", path+".missing")
	assert.Equal(t, 1, r.code)
	assert.Empty(t, r.stdout)
}

// put replaces the guarded file with standard input under the lock, and
// is refused, changing nothing, when the file's token is higher than its
// lease's (a stale token) or the lock is held.
func TestPut(t *testing.T) {
	dir := lockDir(t)
	path := filepath.Join(guardedDir(t, dir), "instructions")

	r := agentlock(t, "install Office 97\n", "put", "-dir", dir, "pcm-install", path)
	require.Equal(t, 0, r.code)
	g, err := guarded.Open(path)
	require.NoError(t, err)
	data, tok1, err := g.ReadToken()
	require.NoError(t, err)
	assert.Equal(t, "install Office 97\n", string(data))

	r = agentlock(t, "install Word 6\n", "put", "-dir", dir, "pcm-install", path)
	require.Equal(t, 0, r.code)
	data, tok2, err := g.ReadToken()
	require.NoError(t, err)
	assert.Equal(t, "install Word 6\n", string(data))
	assert.Greater(t, tok2, tok1)

	// Held: -n fails with the holder on standard error.
	h := startHolder(t, dir, "pcm-install", "installing Word 6")
	r = agentlock(t, "nothing\n", "put", "-n", "-dir", dir, "pcm-install", path)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, fmt.Sprintf("pid %d", h.pid))
	h.release(t)

	// Another lock's lease may not write the file.
	r = agentlock(t, "other\n", "put", "-dir", dir, "other-lock", path)
	assert.Equal(t, 3, r.code)
	assert.Contains(t, r.stderr, "fenced")

	// A version written with a token from the future (by a machine whose
	// clock runs ahead): every lease here has a lower, stale token.
	future := guardedFile("pcm-install", ^uint64(0)>>1, []byte("from the future\n"))
	require.NoError(t, os.WriteFile(path, future, 0o644))
	r = agentlock(t, "stale\n", "put", "-dir", dir, "pcm-install", path)
	assert.Equal(t, 3, r.code)
	assert.Contains(t, r.stderr, "fenced")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, future, b, "a refused put changes nothing")
	assert.Equal(t, "from the future\n", agentlock(t, "", "cat", path).stdout)
}

// guardedFile encodes a guarded file as the lock package documents its
// format, version 1.
func guardedFile(name string, token uint64, payload []byte) []byte {
	b := make([]byte, 104+len(payload))
	copy(b, "\x89ALG\r\n\x1a\n")
	b[8], b[9] = 1, byte(len(name))
	binary.LittleEndian.PutUint64(b[16:], token)
	binary.LittleEndian.PutUint64(b[24:], uint64(len(payload)))
	copy(b[32:], name)
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	crc.Write(b[:96])
	crc.Write(payload)
	binary.LittleEndian.PutUint32(b[96:], crc.Sum32())
	copy(b[104:], payload)
	return b
}
