package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wstap/wstap/capture"
)

// TestBadLinesOnePolicy: a torn line in sessions.jsonl and one in
// events.jsonl end neither the HAR nor the bundle; both are counted with
// their file and line, the bundle's README names them, and every good
// session is still in the HAR.
func TestBadLinesOnePolicy(t *testing.T) {
	dir := writeTestRun(t)
	appendTo(t, filepath.Join(dir, capture.SessionsFile), `{"id":"torn","handshake":{`+"\n")
	appendTo(t, filepath.Join(dir, capture.EventsFile), "not json\n")
	sessions := len(testRecords())

	d := openRun(t, dir)
	var har bytes.Buffer
	if err := WriteHAR(&har, d, HAROptions{}); err != nil {
		t.Fatalf("WriteHAR: %v", err)
	}
	var doc struct {
		Log struct {
			Entries []struct {
				Type string `json:"_resourceType"`
			} `json:"entries"`
		} `json:"log"`
	}
	if err := json.Unmarshal(har.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	ws := 0
	for _, e := range doc.Log.Entries {
		if e.Type == "websocket" {
			ws++
		}
	}
	if ws != sessions {
		t.Errorf("HAR: %d WebSocket entries, want the %d good sessions", ws, sessions)
	}
	checkBad(t, "HAR", d.Bad, dir)

	d = openRun(t, dir)
	var out bytes.Buffer
	if err := WriteBundle(d, &out, BundleOptions{}); err != nil {
		t.Fatalf("WriteBundle: %v", err)
	}
	checkBad(t, "bundle", d.Bad, dir)
	readme := string(untar(t, out.Bytes())[bundleReadme])
	for _, want := range []string{"sessions.jsonl: lines left out because they do not parse (they could not be redacted): 1", "events.jsonl: lines left out because they do not parse (they could not be redacted): 1"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.txt does not say %q:\n%s", want, readme)
		}
	}
}

func checkBad(t *testing.T, what string, bad capture.BadLines, dir string) {
	t.Helper()
	s := bad.String()
	if bad.Count != 2 || !strings.Contains(s, filepath.Join(dir, capture.SessionsFile)+":") ||
		!strings.Contains(s, filepath.Join(dir, capture.EventsFile)+":") {
		t.Errorf("%s: bad lines %q, want one of each file, with its path and line", what, s)
	}
}

func appendTo(t *testing.T, path, line string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line); err != nil {
		t.Fatal(err)
	}
}
