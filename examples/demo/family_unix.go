//go:build unix

package main

import (
	"os"
	"os/exec"
	"strconv"
)

// inherit passes f to cmd's process and returns its descriptor there.
func inherit(cmd *exec.Cmd, f *os.File) (string, error) {
	cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	return strconv.Itoa(2 + len(cmd.ExtraFiles)), nil
}
