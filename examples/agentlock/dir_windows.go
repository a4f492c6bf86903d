package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/windows"
)

// defaultDir is the lock package's default lock directory, which it
// does not export; ls needs it to list the locks.
func defaultDir() (string, error) {
	pd, err := windows.KnownFolderPath(windows.FOLDERID_ProgramData, 0)
	if err != nil || pd == "" {
		pd = os.Getenv("ProgramData")
	}
	if pd == "" {
		return "", &fs.PathError{Op: "lock", Path: `%ProgramData%`, Err: errors.New("cannot find the ProgramData folder")}
	}
	return filepath.Join(pd, "agentlock"), nil
}

// localNamespace is the lock package's ScopeLocal namespace of this
// process: one per logon session.
func localNamespace() string {
	var s uint32
	windows.ProcessIdToSessionId(windows.GetCurrentProcessId(), &s)
	return "s" + strconv.FormatUint(uint64(s), 10)
}
