package report

import "testing"

// TestEventLineSkippable: a line is passed over undecoded only when its
// bytes show plainly an event the report does not need; any doubt decodes it.
func TestEventLineSkippable(t *testing.T) {
	wants := func(event, session []byte) bool { return string(event) == "http" || string(session) == "cand" }
	for _, c := range []struct {
		line string
		skip bool
	}{
		{`{"time":"2026-01-01T00:00:00Z","session":"s1","event":"ping","dir":"client_to_upstream"}`, true},
		{`{"time":"2026-01-01T00:00:00Z","session":"cand","event":"ping"}`, false}, // a session whose timeline is drawn
		{`{"time":"2026-01-01T00:00:00Z","session":"s1","event":"http","status":200}`, false},
		{`{"session":"s1","event":"tls","leg":"client","error":"","alert":""}`, true},
		{`{"session":"s1","event":"tls","leg":"client"}`, true},                            // no error, no alert
		{`{"session":"s1","event":"tls","leg":"client","alert":"bad_certificate"}`, false}, // a failure
		{`{"session":"s1","event":"tls","error":"x","leg":"client","alert":""}`, false},
		{`{"session":"s1", "event": "ping"}`, false},                    // spaced: not plain
		{`{"session":"s1","event":"ping","x":{"event":"http"}}`, false}, // the key twice
		{`{"session":"s\u0031","event":"ping"}`, false},                 // an escape
		{`{"session":"s1","event":"pi\"ng"}`, false},
		{`{"event":"ping"}`, true}, // no session: not a drawn one
		{`{"session":"s1","reason":"event","event":"ping"}`, false},
	} {
		l := &eventLine{wants: wants}
		if got := l.skippable([]byte(c.line)); got != c.skip {
			t.Errorf("skippable(%s) = %v, want %v", c.line, got, c.skip)
		}
	}
}

// TestEventLineSkippedStillChecked: a skipped line must still be JSON (a
// line cut short counts as bad), and a decoded line resets what the last
// one left.
func TestEventLineSkippedStillChecked(t *testing.T) {
	l := &eventLine{wants: func(event, _ []byte) bool { return string(event) == "http" }}
	if err := l.DecodeLine([]byte(`{"session":"s1","event":"ping","len":`)); err == nil || l.skipped {
		t.Errorf("a line cut short: err %v, skipped %v; want an error", err, l.skipped)
	}
	if err := l.DecodeLine([]byte(`{"time":"2026-01-01T00:00:00Z","session":"s1","event":"http","status":429,"method":"GET"}`)); err != nil || l.skipped {
		t.Fatalf("http: err %v, skipped %v", err, l.skipped)
	}
	if err := l.DecodeLine([]byte(`{"time":"2026-01-01T00:00:01Z","session":"s2","event":"http","status":200}`)); err != nil {
		t.Fatal(err)
	}
	if e := l.event(); e.Status != 200 || e.Method != "" || e.Session != "s2" {
		t.Errorf("second line %+v: want status 200, no method left from the first", *e)
	}
}
