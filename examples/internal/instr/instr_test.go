package instr

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMergeAndRoundTrip(t *testing.T) {
	var f File
	added := f.Merge(Catalog{Packages: []CatalogEntry{{Name: "Office 97", Files: 3}, {Name: "Quake"}}})
	assert.Equal(t, []string{"Office 97", "Quake"}, added)
	assert.Equal(t, 1, f.Find("Quake").Files, "at least one file")
	f.Find("Office 97").State = Done
	assert.Empty(t, f.Merge(Catalog{Packages: []CatalogEntry{{Name: "Office 97"}}}), "known packages are not queued again")
	assert.Equal(t, []string{"Quake"}, f.Names(Queued))

	g, err := Decode(f.Encode())
	require.NoError(t, err)
	assert.True(t, f.Equal(&g))
	empty, err := Decode(nil)
	require.NoError(t, err)
	assert.Empty(t, empty.Packages)
}

func TestDecodeCatalog(t *testing.T) {
	_, err := DecodeCatalog([]byte(`{"packages":[{"name":"a"},{"name":"a"}]}`))
	assert.ErrorContains(t, err, "twice")
	_, err = DecodeCatalog([]byte(`{"packages":[{"name":" "}]}`))
	assert.ErrorContains(t, err, "no name")
	c, err := DecodeCatalog([]byte(`{"packages":[{"name":"Office 97","files":2}]}`))
	require.NoError(t, err)
	assert.Equal(t, 2, c.Packages[0].Files)
}

func TestSlug(t *testing.T) {
	assert.Equal(t, "office-97", Slug("Office 97"))
	assert.Equal(t, "netscape-communicator-4", Slug("Netscape Communicator 4!"))
	assert.Equal(t, "winzip-6.3", Slug("WinZip 6.3"))
	assert.Equal(t, "package", Slug(".."))
	assert.Equal(t, "package", Slug("///"))
}
