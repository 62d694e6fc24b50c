package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// eventLine decodes one line of events.jsonl in one pass: "time" through
// eventStamp, the rest as loggedEvent. It is read with capture.LinesInto,
// one value for the whole file: with wants set, a line whose event the
// report does not need (see skippable) is only checked to be JSON.
type eventLine struct {
	loggedEvent
	Time eventStamp `json:"time"`

	// wants says from a line's event and session whether the report needs
	// it; nil: every line is decoded. skipped: the line at hand was not.
	wants   func(event, session []byte) bool
	skipped bool
}

// DecodeLine decodes the line unless it can be skipped (capture.LineDecoder).
func (l *eventLine) DecodeLine(b []byte) error {
	l.skipped = false
	if l.wants != nil && l.skippable(b) && json.Valid(b) {
		l.skipped = true
		return nil
	}
	l.loggedEvent, l.Time = loggedEvent{}, eventStamp{}
	return json.Unmarshal(b, l)
}

// skippable reports whether the line is an event the report does not need,
// read from its bytes without decoding it: its event and session are plain
// strings that wants declines, and a "tls" event carries neither an error
// nor an alert. Any doubt (a key twice, spaced, escaped) decodes the line.
func (l *eventLine) skippable(b []byte) bool {
	ev, ok := plainField(b, `"event"`)
	if !ok {
		return false
	}
	sess, ok := plainField(b, `"session"`)
	if !ok || l.wants(ev, sess) {
		return false
	}
	if string(ev) == "tls" {
		for _, k := range []string{`"error"`, `"alert"`} {
			if v, ok := plainField(b, k); !ok || len(v) > 0 {
				return false
			}
		}
	}
	return true
}

// plainField finds the string value of the quoted key in a JSON line: ok
// when the key is absent (value empty) or occurs once, written `"key":"`,
// with a value free of escapes.
func plainField(b []byte, key string) (value []byte, ok bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return nil, true
	}
	if bytes.Contains(b[i+len(key):], []byte(key)) {
		return nil, false
	}
	rest, found := bytes.CutPrefix(b[i+len(key):], []byte(`:"`))
	if !found {
		return nil, false
	}
	end := bytes.IndexAny(rest, `"\`)
	if end < 0 || rest[end] != '"' {
		return nil, false
	}
	return rest[:end], true
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
