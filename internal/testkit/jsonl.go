package testkit

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// ReadJSONL reads a JSONL file such as sessions.jsonl (into
// []record.Session) or events.jsonl (into []map[string]any), one
// value a line; a line that does not parse fails the test.
func ReadJSONL[T any](t testing.TB, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s line %q: %v", filepath.Base(path), sc.Text(), err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}
