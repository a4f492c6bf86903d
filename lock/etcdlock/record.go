package etcdlock

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/agentlock/agentlock/lock"
)

// recordVersion is the "v" field of the holder record (see the package
// documentation, "Holder record").
const recordVersion = 1

// wireRecord is the JSON value of a queue key.
type wireRecord struct {
	V       int    `json:"v"`
	PID     int    `json:"pid"`
	Host    string `json:"host"`
	Purpose string `json:"purpose"`
	Since   string `json:"since"`           // RFC 3339 with nanoseconds, UTC
	Start   uint64 `json:"start,omitempty"` // lock.Holder.ProcessStart
	Boot    string `json:"boot,omitempty"`  // lock.Holder.BootID, 32 hex digits
}

func encodeRecord(h lock.Holder) string {
	w := wireRecord{
		V:       recordVersion,
		PID:     h.PID,
		Host:    h.Host,
		Purpose: h.Purpose,
		Since:   h.Since.UTC().Format(time.RFC3339Nano),
		Start:   h.ProcessStart,
	}
	if h.BootID != ([16]byte{}) {
		w.Boot = hex.EncodeToString(h.BootID[:])
	}
	b, err := json.Marshal(w)
	if err != nil {
		panic("etcdlock: " + err.Error()) // only strings and numbers: cannot happen
	}
	return string(b)
}

// decodeRecord decodes the value of a queue key created at revision
// rev (the holder's token).
func decodeRecord(val []byte, rev int64) (lock.Holder, error) {
	var w wireRecord
	if err := json.Unmarshal(val, &w); err != nil {
		return lock.Holder{}, fmt.Errorf("%w: holder record: %v", lock.ErrCorrupt, err)
	}
	if w.V != recordVersion {
		return lock.Holder{}, fmt.Errorf("%w: holder record: version %d, want %d", lock.ErrCorrupt, w.V, recordVersion)
	}
	since, err := time.Parse(time.RFC3339Nano, w.Since)
	if err != nil {
		return lock.Holder{}, fmt.Errorf("%w: holder record: since: %v", lock.ErrCorrupt, err)
	}
	h := lock.Holder{
		PID:          w.PID,
		Host:         w.Host,
		Purpose:      w.Purpose,
		Since:        since.Local(),
		Token:        uint64(rev),
		ProcessStart: w.Start,
	}
	if w.Boot != "" {
		b, err := hex.DecodeString(w.Boot)
		if err != nil || len(b) != len(h.BootID) {
			return lock.Holder{}, fmt.Errorf("%w: holder record: boot id %q", lock.ErrCorrupt, w.Boot)
		}
		copy(h.BootID[:], b)
	}
	return h, nil
}

// State key values (see README.md, "How it works", Abandoned).
const (
	stateHeld     = "held "
	stateReleased = "released "
)

// previousAbandoned reports, from the state key's value before this
// acquisition (nil if the key did not exist), whether the previous
// holder lost the lock without releasing it.
func previousAbandoned(prev []byte) bool {
	if prev == nil {
		return false
	}
	s := string(prev)
	if strings.HasPrefix(s, stateReleased) {
		return false
	}
	// "held KEY": that holder never released. Anything else is not
	// ours to interpret, so it cannot be ruled out.
	return true
}
