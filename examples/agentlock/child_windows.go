package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"unsafe"

	"golang.org/x/sys/windows"
)

// runChild starts cmd, calls started with its process and a function
// that kills it, and waits for it to end.
//
// The command must not outlive agentlock, which holds the lock. So
// agentlock puts itself in a job object that ends every process in it
// when its last handle is closed, which happens when agentlock exits,
// however it exits (TerminateProcess included); the command and every
// process it starts are born in the job. The handle is not inheritable,
// so only agentlock keeps the job alive.
func runChild(cmd *exec.Cmd, started func(p *os.Process, kill func())) (*os.ProcessState, error) {
	if err := killOnExitJob(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	started(cmd.Process, func() { cmd.Process.Kill() }) // the job ends the rest as agentlock exits
	err := cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) && cmd.ProcessState == nil {
		return nil, err
	}
	return cmd.ProcessState, nil
}

var jobOnce = sync.OnceValue(func() error {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return fmt.Errorf("job object: %w", err)
	}
	var info windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION
	info.BasicLimitInformation.LimitFlags = windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		windows.CloseHandle(job)
		return fmt.Errorf("job object: %w", err)
	}
	if err := windows.AssignProcessToJobObject(job, windows.CurrentProcess()); err != nil {
		windows.CloseHandle(job)
		return fmt.Errorf("job object: cannot run the command so that it ends with agentlock: %w", err)
	}
	return nil // the handle stays open until agentlock exits
})

func killOnExitJob() error { return jobOnce() }
