package guarded

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

// Every error of a guarded file names the guarded file's own operation
// and path, never "lock" or another operation's name.
func TestGuardedErrorsNameOperationAndPath(t *testing.T) {
	missing := filepath.Join(proctest.TempDir(t), "nonexist", "instructions")
	_, err := Open(missing)
	require.ErrorIs(t, err, fs.ErrNotExist)
	var pe *fs.PathError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "open guarded", pe.Op)
	assert.Equal(t, missing, pe.Path)
	assert.True(t, strings.HasPrefix(err.Error(), "open guarded "+missing+": directory "+filepath.Dir(missing)+": "), err.Error())
	assert.NotContains(t, err.Error(), "lock ")

	c, g := guardedFixture(t, "guarded-errors")
	l, err := c.Acquire(context.Background())
	require.NoError(t, err)
	defer l.Release()
	// The file's path turns into a directory after Open.
	require.NoError(t, os.Mkdir(g.Path(), 0o755))
	for _, tc := range []struct {
		op string
		do func() error
	}{
		{"read guarded", func() error { _, err := g.Read(); return err }},
		{"write guarded", func() error { return g.Write(l, []byte("x")) }},
		{"update guarded", func() error { return g.Update(l, func(b []byte) ([]byte, error) { return b, nil }) }},
	} {
		err := tc.do()
		require.Error(t, err, tc.op)
		require.ErrorAs(t, err, &pe, tc.op)
		assert.Equal(t, tc.op, pe.Op)
		assert.Equal(t, g.Path(), pe.Path)
		assert.True(t, strings.HasPrefix(err.Error(), tc.op+" "+g.Path()+": "), err.Error())
	}

	err = g.Update(l, nil)
	assert.ErrorIs(t, err, lock.ErrInvalidOption)
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "update guarded", pe.Op)
	assert.False(t, errors.Is(err, lock.ErrFenced))
}
