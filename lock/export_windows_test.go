package lock

import "path/filepath"

// FileLockMoved reports whether this process's file lock of name in dir
// counts its files as moved (see fileLock.Moved), for package lock_test.
func FileLockMoved(dir, name string) bool {
	v, ok := locks.Load(filepath.Join(dir, name+".lock"))
	return ok && v.(*fileLock).Moved()
}
