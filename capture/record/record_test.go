package record

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestSessionRecordRoundTrip: every line of the fixture's sessions.jsonl,
// decoded into a Session and encoded again as the recorder does,
// gives the same bytes: no field of the contract is lost or reshaped.
func TestSessionRecordRoundTrip(t *testing.T) {
	path := filepath.Join("..", "..", "testdata", "rundir", "demo", "sessions.jsonl")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		var rec Session
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		again, err := json.Marshal(&rec)
		if err != nil {
			t.Fatalf("%s:%d: encoding: %v", path, n, err)
		}
		if !bytes.Equal(again, sc.Bytes()) {
			t.Fatalf("%s:%d: re-encoded differs:\n got: %s\nwant: %s", path, n, again, sc.Bytes())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("%s: %d records, want the fixture's 40", path, n)
	}
}
