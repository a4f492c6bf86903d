package lock_test

import (
	"testing"

	"github.com/agentlock/agentlock/internal/proctest"
)

func TestMain(m *testing.M) { proctest.Main(m) }
