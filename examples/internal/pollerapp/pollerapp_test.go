package pollerapp

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentlock/agentlock/examples/internal/report"
	"github.com/agentlock/agentlock/lock"
	"github.com/agentlock/agentlock/poll"
)

func TestBusyMessage(t *testing.T) {
	var buf bytes.Buffer
	a := &app{out: report.NewPrinter(&buf, "poller", true, false)}
	a.busy(poll.Event{Holder: lock.Holder{PID: 4242, Purpose: "installing Office 97"}, Busy: 12 * time.Second})
	a.busy(poll.Event{Holder: lock.Holder{PID: 4242, Purpose: "querying logon1"}, Busy: 2500 * time.Millisecond})

	var evs []report.Event
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var e report.Event
		require.NoError(t, json.Unmarshal([]byte(line), &e))
		evs = append(evs, e)
	}
	require.Len(t, evs, 2)
	assert.Equal(t, "A package is currently being installed in the background: Office 97, by pid 4242, for 12 s", evs[0].Msg)
	assert.Equal(t, "Office 97", evs[0].Package)
	assert.Equal(t, int64(12000), evs[0].BusyMS)
	// A holder that is not installing gets the classic message too: the
	// policy, not the poller, decides whether the user sees it.
	assert.Contains(t, evs[1].Msg, "A package is currently being installed in the background, please wait (by pid 4242, for 2.5 s")
	assert.Equal(t, "querying logon1", evs[1].Purpose)
	assert.Empty(t, evs[1].Package)
}

func TestMainFlags(t *testing.T) {
	var out, errb bytes.Buffer
	assert.Equal(t, 0, Main([]string{"-h"}, &out, &errb))
	assert.Contains(t, out.String(), "A package is currently being installed in the background")
	assert.Contains(t, out.String(), "-notify")
	assert.Empty(t, errb.String())

	errb.Reset()
	assert.Equal(t, 2, Main([]string{"-file", "x", "-notify", "sometimes"}, &out, &errb))
	assert.Contains(t, errb.String(), "-notify")

	errb.Reset()
	assert.Equal(t, 2, Main(nil, &out, &errb))
	assert.Contains(t, errb.String(), "-file needs the path of the instruction file")
}
