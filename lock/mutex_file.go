package lock

import (
	"context"
	"errors"
	"os"
)

// newFileMutexBackend returns the Unix equivalent of a named mutex: the
// file backend on c.dir, with each name mapped to its own lock file
// (_mutex.NAME.lock, or _mutex.uUID.NAME.lock for ScopeLocal), locked
// with flock(2). Like a Windows mutex, the lock is released by the
// kernel when its holder dies, and the next lease reports Abandoned.
func newFileMutexBackend(c *mutexConfig) (Backend, error) {
	return &fileMutexBackend{file: fileBackend{dir: c.dir}, scope: c.scope, local: uint64(os.Geteuid())}, nil
}

type fileMutexBackend struct {
	file  fileBackend
	scope MutexScope
	local uint64
}

func (b *fileMutexBackend) Acquire(ctx context.Context, req Request) (Grant, error) {
	name := req.Name
	if err := validateName(name); err != nil {
		return nil, err
	}
	req.Name = mutexFileName(b.scope, b.local, name)
	g, err := b.file.acquire(ctx, b.file.lock(req.Name), req)
	var be *BusyError
	if errors.As(err, &be) {
		be.Name = name
	}
	return g, err
}

func (b *fileMutexBackend) Holder(ctx context.Context, name string) (Holder, error) {
	if err := validateName(name); err != nil {
		return Holder{}, err
	}
	return b.file.lock(mutexFileName(b.scope, b.local, name)).hf.holder(ctx, name)
}
