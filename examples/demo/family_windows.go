package main

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// inherit passes f to cmd's process and returns its handle there (the
// same value: an inherited handle keeps its number). os/exec has no
// ExtraFiles on Windows; the handle list of CreateProcess takes only
// inheritable handles, and lists exactly what is passed, so marking f
// inheritable leaks it to no other process.
func inherit(cmd *exec.Cmd, f *os.File) (string, error) {
	h := syscall.Handle(f.Fd())
	if err := syscall.SetHandleInformation(h, syscall.HANDLE_FLAG_INHERIT, syscall.HANDLE_FLAG_INHERIT); err != nil {
		return "", os.NewSyscallError("SetHandleInformation", err)
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.AdditionalInheritedHandles = append(cmd.SysProcAttr.AdditionalInheritedHandles, h)
	return strconv.FormatUint(uint64(h), 10), nil
}

// detach starts cmd's process in a process group of its own, so that
// Ctrl-C in the demo's console does not reach it.
func detach(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.CreationFlags |= syscall.CREATE_NEW_PROCESS_GROUP
}
