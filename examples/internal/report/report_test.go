package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPrinter(t *testing.T) {
	var buf bytes.Buffer
	p := NewPrinter(&buf, "installer", true, false)
	p.Emit(Event{Event: "installing", Package: "Office 97", Msg: "installing Office 97"})
	var e Event
	require.NoError(t, json.Unmarshal(buf.Bytes(), &e))
	assert.Equal(t, "installer", e.Prog)
	assert.NotZero(t, e.PID)
	assert.False(t, e.Time.IsZero())
	assert.Equal(t, "Office 97", e.Package)

	buf.Reset()
	p = NewPrinter(&buf, "poller", false, false)
	p.Emit(Event{Time: time.Date(2026, 1, 2, 15, 4, 5, 6e6, time.UTC), PID: 42, Event: "busy", Msg: "hello"})
	assert.Equal(t, "15:04:05.006 poller[42]        hello\n", buf.String())
}

func TestFormat(t *testing.T) {
	e := Event{Time: time.Now(), Prog: "poller", PID: 7, Event: "busy", Msg: "A package is ..."}
	plain := Format(e, false, true)
	assert.NotContains(t, plain, "\x1b[")
	assert.Contains(t, plain, "SPURIOUS")
	colored := Format(e, true, true)
	assert.Contains(t, colored, "\x1b[")
	assert.Contains(t, colored, "A package is ...")
	assert.True(t, strings.HasSuffix(colored, "\x1b[0m"))
}

func TestListSeconds(t *testing.T) {
	assert.Equal(t, "none", List(nil))
	assert.Equal(t, "a", List([]string{"a"}))
	assert.Equal(t, "a, b and c", List([]string{"a", "b", "c"}))
	assert.Equal(t, "0.4 s", Seconds(400*time.Millisecond))
	assert.Equal(t, "12 s", Seconds(12400*time.Millisecond))
}
