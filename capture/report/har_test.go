package report

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/record"
)

// harJSON writes the HAR of dir and decodes it generically, as a validator would.
func harJSON(t *testing.T, dir string, opts HAROptions) (map[string]any, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteHAR(&buf, openRun(t, dir), opts); err != nil {
		t.Fatalf("WriteHAR: %v", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("HAR is not JSON: %v", err)
	}
	return doc, buf.Bytes()
}

// requireFields fails for every field of obj (at path) missing or of the wrong JSON type.
func requireFields(t *testing.T, path string, obj map[string]any, fields map[string]string) {
	t.Helper()
	for name, typ := range fields {
		v, ok := obj[name]
		if !ok {
			t.Errorf("%s.%s is missing", path, name)
			continue
		}
		okType := false
		switch typ {
		case "string":
			_, okType = v.(string)
		case "number":
			_, okType = v.(float64)
		case "object":
			_, okType = v.(map[string]any)
		case "array":
			_, okType = v.([]any)
		}
		if !okType {
			t.Errorf("%s.%s = %v, want a JSON %s", path, name, v, typ)
		}
	}
}

func TestHARRequiredFields(t *testing.T) {
	dir := writeTestRun(t)
	doc, raw := harJSON(t, dir, HAROptions{})
	log, _ := doc["log"].(map[string]any)
	if log == nil {
		t.Fatal("HAR has no log object")
	}
	requireFields(t, "log", log, map[string]string{"version": "string", "creator": "object", "entries": "array"})
	if log["version"] != "1.2" {
		t.Errorf("log.version = %v, want 1.2", log["version"])
	}
	creator, _ := log["creator"].(map[string]any)
	requireFields(t, "log.creator", creator, map[string]string{"name": "string", "version": "string"})
	if creator["version"] != "test-1.0" {
		t.Errorf("creator.version = %v, want the run's version", creator["version"])
	}
	entries, _ := log["entries"].([]any)
	if len(entries) != 3 {
		t.Fatalf("%d entries, want 3 (2 sessions, 1 REST call)", len(entries))
	}
	recs := map[string]record.Session{}
	for _, r := range testRecords() {
		recs[r.ID] = r
	}
	sessions := 0
	for i, e := range entries {
		entry := e.(map[string]any)
		p := "entries[" + string(rune('0'+i)) + "]"
		requireFields(t, p, entry, map[string]string{"startedDateTime": "string", "time": "number",
			"request": "object", "response": "object", "cache": "object", "timings": "object"})
		requireFields(t, p+".request", entry["request"].(map[string]any), map[string]string{
			"method": "string", "url": "string", "httpVersion": "string", "cookies": "array",
			"headers": "array", "queryString": "array", "headersSize": "number", "bodySize": "number"})
		resp := entry["response"].(map[string]any)
		requireFields(t, p+".response", resp, map[string]string{
			"status": "number", "statusText": "string", "httpVersion": "string", "cookies": "array",
			"headers": "array", "content": "object", "redirectURL": "string", "headersSize": "number", "bodySize": "number"})
		requireFields(t, p+".response.content", resp["content"].(map[string]any), map[string]string{"size": "number", "mimeType": "string"})
		timings := entry["timings"].(map[string]any)
		requireFields(t, p+".timings", timings, map[string]string{"send": "number", "wait": "number", "receive": "number"})
		if sum := timings["send"].(float64) + timings["wait"].(float64) + timings["receive"].(float64); sum != entry["time"].(float64) {
			t.Errorf("%s: time %v is not the sum of its timings %v", p, entry["time"], sum)
		}
		if entry["_resourceType"] != "websocket" {
			continue
		}
		sessions++
		id := entry["_wstap"].(map[string]any)["id"].(string)
		rec := recs[id]
		url := entry["request"].(map[string]any)["url"].(string)
		if !strings.HasPrefix(url, "http://chat.example.com:80/chat?") {
			t.Errorf("%s: url %q, want ws:// turned into http://", id, url)
		}
		if int(resp["status"].(float64)) != rec.Handshake.Status {
			t.Errorf("%s: status %v, want %d", id, resp["status"], rec.Handshake.Status)
		}
		var send, receive int64
		for _, m := range entry["_webSocketMessages"].([]any) {
			msg := m.(map[string]any)
			requireFields(t, id+" message", msg, map[string]string{"type": "string", "time": "number", "opcode": "number", "data": "string"})
			if msg["data"] != "" {
				t.Errorf("%s: message data %q kept without IncludePayloads", id, msg["data"])
			}
			if msg["time"].(float64) < float64(testStart.Unix()) {
				t.Errorf("%s: message time %v is not in epoch seconds", id, msg["time"])
			}
			switch msg["type"] {
			case "send":
				send++
			case "receive":
				receive++
			default:
				t.Errorf("%s: message type %v", id, msg["type"])
			}
		}
		f := rec.Frames
		if want := f.ClientToUpstream.Text + f.ClientToUpstream.Binary; send != want {
			t.Errorf("%s: %d send messages, the record counts %d", id, send, want)
		}
		if want := f.UpstreamToClient.Text + f.UpstreamToClient.Binary; receive != want {
			t.Errorf("%s: %d receive messages, the record counts %d", id, receive, want)
		}
		controls := entry["_webSocketControlFrames"].([]any)
		want := f.ClientToUpstream.Ping + f.ClientToUpstream.Pong + f.ClientToUpstream.Close +
			f.UpstreamToClient.Ping + f.UpstreamToClient.Pong + f.UpstreamToClient.Close
		if int64(len(controls)) != want {
			t.Errorf("%s: %d control frames, the record counts %d", id, len(controls), want)
		}
	}
	if sessions != len(recs) {
		t.Errorf("%d websocket entries, want one per session (%d)", sessions, len(recs))
	}
	for _, s := range bundleSecrets() {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("HAR contains the secret %q", s)
		}
	}
}

func TestHARPayloadsAndCap(t *testing.T) {
	dir := writeTestRun(t)
	doc, raw := harJSON(t, dir, HAROptions{IncludePayloads: true, MaxMessages: 2})
	var s1 map[string]any
	for _, e := range doc["log"].(map[string]any)["entries"].([]any) {
		if w, ok := e.(map[string]any)["_wstap"].(map[string]any); ok && w["id"] == "s1" {
			s1 = e.(map[string]any)
		}
	}
	if s1 == nil {
		t.Fatal("no entry for session s1")
	}
	msgs := s1["_webSocketMessages"].([]any)
	if len(msgs) != 2 || s1["_webSocketMessagesOmitted"] != float64(2) {
		t.Errorf("MaxMessages 2: %d messages, %v omitted; want 2 and 2", len(msgs), s1["_webSocketMessagesOmitted"])
	}
	first := msgs[0].(map[string]any)["data"].(string)
	if !strings.Contains(first, secretText) || strings.Contains(first, testJWT) {
		t.Errorf("IncludePayloads: first message data %q, want the text kept and its JWT redacted", first)
	}
	if !bytes.Contains(raw, []byte(`"Bearer [redacted]"`)) {
		t.Error("Authorization header not redacted with its scheme kept")
	}
}

// The HAR document whole, as WriteHAR once encoded it in one piece: the
// reference its entry-by-entry writing must match byte for byte.
type harDoc struct {
	Log harLog `json:"log"`
}

type harLog struct {
	Version string      `json:"version"`
	Creator harCreator  `json:"creator"`
	Entries []*harEntry `json:"entries"`
}

type harCreator struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// TestHARWrittenEntryByEntry: the HAR written entry by entry is the
// document json.Encoder indents whole, with entries, with none ("entries":
// [], as HAR 1.2 wants an array), and with a version that JSON must escape.
func TestHARWrittenEntryByEntry(t *testing.T) {
	for _, c := range []struct {
		dir, version string
	}{
		{filepath.Join("..", "..", "testdata", "rundir", "demo"), "v1.2.3"},
		{writeTestRun(t), `dev <"x">`},
		{t.TempDir(), "dev"},
	} {
		build := func() *harBuilder {
			h := newHARBuilder(HAROptions{})
			d, err := capture.OpenRunDir(c.dir)
			if err != nil {
				return h // an empty dir: no entries
			}
			d.Sessions(func(r *record.Session) error { h.session(r); return nil })
			capture.Lines(d, capture.EventsFile, func(ev *harEvent) error { h.event(ev); return nil })
			return h
		}
		var got bytes.Buffer
		if err := build().write(&got, c.version); err != nil {
			t.Fatal(err)
		}
		h := build()
		entries := append(append([]*harEntry{}, h.entries...), h.http...)
		sort.SliceStable(entries, func(i, j int) bool { return entries[i].start.Before(entries[j].start) })
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(harDoc{Log: harLog{Version: "1.2", Creator: harCreator{"wstap", c.version}, Entries: entries}}); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("%s: written entry by entry (%d bytes) is not the whole document (%d bytes):\n%.600s\nwant\n%.600s",
				c.dir, got.Len(), want.Len(), got.String(), want.String())
		}
	}
}
