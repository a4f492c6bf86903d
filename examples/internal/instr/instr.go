// Package instr holds the two formats the example programs share: the
// catalog a logon server publishes (packages.json) and the instruction
// file the installer and the poller share (a guarded.File payload).
//
// Both are JSON so that a newcomer can look at them with cat; the
// guarded file adds its own binary header (see package guarded), so
// to read the instruction file by hand use the poller, or
// guarded.Open(path).Read().
package instr

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// CatalogFile is the name of the catalog on a logon server: the path
// below an HTTP server's base URL, or the file name in a share.
const CatalogFile = "packages.json"

// A Catalog is what a logon server offers: the packages to install.
type Catalog struct {
	Packages []CatalogEntry `json:"packages"`
}

// A CatalogEntry is one package on the logon server.
type CatalogEntry struct {
	Name  string `json:"name"`
	Files int    `json:"files"` // how many files installing it writes (at least 1)
}

// DecodeCatalog parses a catalog and checks it.
func DecodeCatalog(b []byte) (Catalog, error) {
	var c Catalog
	if err := json.Unmarshal(b, &c); err != nil {
		return Catalog{}, fmt.Errorf("catalog: %w", err)
	}
	seen := map[string]bool{}
	for _, p := range c.Packages {
		if strings.TrimSpace(p.Name) == "" {
			return Catalog{}, fmt.Errorf("catalog: a package has no name")
		}
		if seen[p.Name] {
			return Catalog{}, fmt.Errorf("catalog: package %q listed twice", p.Name)
		}
		seen[p.Name] = true
	}
	return c, nil
}

// State is where a package is in its installation.
type State string

// The states of a package. A package goes queued → installing → done.
// A package found "installing" by a holder of the lock was left so by
// an installer that died (nobody else can be installing while we hold
// the lock): it is put back to queued and installed again.
const (
	Queued     State = "queued"
	Installing State = "installing"
	Done       State = "done"
)

// A File is the payload of the shared instruction file.
type File struct {
	Server   string    `json:"server,omitempty"` // the logon server the catalog was last read from
	Updated  time.Time `json:"updated"`
	Packages []Package `json:"packages"`
}

// A Package is one package's progress.
type Package struct {
	Name  string `json:"name"`
	Files int    `json:"files"`
	State State  `json:"state"`

	// Attempts counts the times an installer started installing the
	// package; Installs the times one finished. Installs is only ever
	// raised together with the change to Done, in one atomic write, so
	// a package is never counted twice, whatever is killed when.
	Attempts int `json:"attempts"`
	Installs int `json:"installs"`

	PID      int       `json:"pid,omitempty"` // the installer that last started it
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
}

// Decode parses an instruction file; nil or empty data is an empty file.
func Decode(b []byte) (File, error) {
	var f File
	if len(b) == 0 {
		return f, nil
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return File{}, fmt.Errorf("instruction file: %w", err)
	}
	return f, nil
}

// Encode returns the file as indented JSON.
func (f *File) Encode() []byte {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		panic(err) // only plain types: cannot fail
	}
	return append(b, '\n')
}

// Find returns the package called name, or nil.
func (f *File) Find(name string) *Package {
	for i := range f.Packages {
		if f.Packages[i].Name == name {
			return &f.Packages[i]
		}
	}
	return nil
}

// Merge adds the catalog's packages that the file does not know yet,
// as queued, and returns their names.
func (f *File) Merge(c Catalog) []string {
	var added []string
	for _, e := range c.Packages {
		if f.Find(e.Name) != nil {
			continue
		}
		f.Packages = append(f.Packages, Package{Name: e.Name, Files: max(e.Files, 1), State: Queued})
		added = append(added, e.Name)
	}
	return added
}

// Names returns the names of the packages in state st, in file order.
func (f *File) Names(st State) []string {
	var n []string
	for _, p := range f.Packages {
		if p.State == st {
			n = append(n, p.Name)
		}
	}
	return n
}

// Equal reports whether two files list the same packages in the same
// states (it ignores times).
func (f *File) Equal(g *File) bool {
	return slices.EqualFunc(f.Packages, g.Packages, func(a, b Package) bool {
		return a.Name == b.Name && a.State == b.State && a.Installs == b.Installs && a.PID == b.PID
	})
}

// Slug turns a package name into a directory name: "Office 97" →
// "office-97".
func Slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.TrimSuffix(b.String(), "-")
	if s == "" || s == "." || s == ".." {
		s = "package"
	}
	return s
}
