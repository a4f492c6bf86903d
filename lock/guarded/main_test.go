package guarded

import (
	"testing"

	"github.com/agentlock/agentlock/lock/locktest/proctest"
)

// Child roles of the multi-process tests (proc_test.go).
const (
	roleUpdater = "guarded-updater"
	roleReader  = "guarded-reader"
)

func TestMain(m *testing.M) {
	proctest.Role(roleUpdater, guardedUpdaterRole)
	proctest.Role(roleReader, guardedReaderRole)
	proctest.Main(m)
}
