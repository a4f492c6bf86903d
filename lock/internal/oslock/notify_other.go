//go:build !linux && !darwin && !dragonfly && !freebsd && !netbsd && !openbsd

package oslock

import "os"

// There is no watch here (Windows keeps a held lock's files from being
// removed or renamed instead; see Open).
const canWatch = false

type watch struct{}

func watchFiles(lockF, holderF *os.File, fn func(Event)) (*Watch, error) { return nil, errNoWatch }

func (*watch) close() {}
