package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// eventLine decodes one line of events.jsonl in one pass: "time" through
// eventStamp, the rest as loggedEvent.
type eventLine struct {
	loggedEvent
	Time eventStamp `json:"time"`
}

// event is the line as the report keeps it.
func (l *eventLine) event() *loggedEvent {
	l.loggedEvent.Time = time.Time(l.Time)
	return &l.loggedEvent
}

// eventStamp is zerolog's "time" field (see eventTime).
type eventStamp time.Time

// UnmarshalJSON reads RFC 3339 text or a Unix time; null is an error, as a
// line without a time is no event.
func (t *eventStamp) UnmarshalJSON(b []byte) error {
	var v any
	switch {
	case len(b) > 1 && b[0] == '"' && bytes.IndexByte(b[1:len(b)-1], '\\') < 0:
		v = string(b[1 : len(b)-1])
	case len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9'):
		f, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			return fmt.Errorf("time %s: %w", b, err)
		}
		v = f
	default:
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
	}
	tm, err := eventTime(v)
	*t = eventStamp(tm)
	return err
}
