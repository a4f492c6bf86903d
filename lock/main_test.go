package lock_test

import (
	"testing"

	"github.com/agentlock/agentlock/internal/locktest"
	"github.com/agentlock/agentlock/lock"
)

func fileBackend(dir string) (lock.Backend, error) { return lock.NewFileBackend(dir) }

func TestMain(m *testing.M) { locktest.Main(m, fileBackend) }

func TestFileBackendConformance(t *testing.T) { locktest.Run(t, fileBackend) }
