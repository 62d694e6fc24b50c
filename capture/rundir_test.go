package capture

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wstap/wstap/capture/record"
)

func TestOpenRunDir(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	if _, err := OpenRunDir(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing dir: err = %v, want one naming %s", err, missing)
	}
	empty := t.TempDir()
	if _, err := OpenRunDir(empty); err == nil || !strings.Contains(err.Error(), "not a wstap run dir") {
		t.Errorf("empty dir: err = %v, want not a wstap run dir", err)
	}
	file := filepath.Join(empty, SessionsFile)
	writeFile(t, file, "")
	if _, err := OpenRunDir(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file: err = %v, want not a directory", err)
	}
	for _, name := range []string{RunFile, SessionsFile, EventsFile, PcapFile} {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, name), "")
		if _, err := OpenRunDir(dir); err != nil {
			t.Errorf("a dir holding only %s: %v", name, err)
		}
	}
}

// TestRunDirBadLines: torn, foreign and mistyped lines are counted and
// quoted with file and line; the good lines around them are all read; a
// line longer than any scanner buffer is read whole.
func TestRunDirBadLines(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("x", 5<<20)
	writeFile(t, filepath.Join(dir, SessionsFile), `{"id":"s1"}
{"id":"s2","frames":
not json

{"id":"s3","duration_ms":"soon"}
{"id":"s4","handshake":{"uri":"/`+long+`"}}
{"id":"s5"}`) // the last line without its newline, as a killed writer leaves none
	d, err := OpenRunDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	if err := d.Sessions(func(r *record.Session) error { ids = append(ids, r.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ids, ","); got != "s1,s4,s5" {
		t.Errorf("records read: %s, want s1,s4,s5", got)
	}
	if d.Bad.Count != 3 || len(d.Bad.Examples) != 3 {
		t.Fatalf("bad lines = %+v, want 3 counted and quoted", d.Bad)
	}
	path := filepath.Join(dir, SessionsFile)
	for i, line := range []int{2, 3, 5} {
		if want := fmt.Sprintf("%s:%d: ", path, line); !strings.HasPrefix(d.Bad.Examples[i], want) {
			t.Errorf("example %d = %q, want it to start %q", i, d.Bad.Examples[i], want)
		}
	}
	if s := d.Bad.String(); !strings.HasPrefix(s, "3 lines that do not parse left out (") {
		t.Errorf("String() = %q", s)
	}
	// Events: a missing file has no lines and no bad ones.
	n := 0
	if err := Lines(d, EventsFile, func(*map[string]any) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("missing events.jsonl: %d lines, err %v", n, err)
	}
	if (BadLines{}).String() != "" {
		t.Errorf("no bad lines should say nothing")
	}
}

// TestRunDirCallbackError: the callback's error ends the reading and comes
// back as it was.
func TestRunDirCallbackError(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, EventsFile), "{\"event\":\"a\"}\n{\"event\":\"b\"}\n")
	d, err := OpenRunDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	n := 0
	err = Lines(d, EventsFile, func(*map[string]any) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("err %v after %d lines, want stop after 1", err, n)
	}
}

func TestRunDirInfo(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, RunFile), `{"version":"1.2.3","host":7}`)
	d, err := OpenRunDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := d.Info()
	if m == nil || m.Version != "1.2.3" || err == nil || !strings.Contains(err.Error(), RunFile) {
		t.Errorf("mistyped field: info %+v, err %v; want the version and an error naming run.json", m, err)
	}
	writeFile(t, filepath.Join(dir, RunFile), `{"version":`)
	if m, err := d.Info(); m != nil || err == nil || !strings.Contains(err.Error(), "unparsable") {
		t.Errorf("torn run.json: info %+v, err %v", m, err)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// lineKeeper decodes its own line: it keeps the line and refuses one that
// says "bad".
type lineKeeper struct{ line string }

func (k *lineKeeper) DecodeLine(b []byte) error {
	if strings.Contains(string(b), "bad") {
		return errors.New("a bad line")
	}
	k.line = string(b)
	return nil
}

// TestRunDirLineDecoder: a LineDecoder gets every line as it is in the file
// (not decoded by json.Unmarshal first: the second line is not JSON), and
// its errors count as bad lines.
func TestRunDirLineDecoder(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, SessionsFile), "{\"id\":\"a\"}\nnot json\n{\"bad\":1}\n")
	d, err := OpenRunDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = Lines(d, SessionsFile, func(k *lineKeeper) error {
		got = append(got, k.line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "|") != `{"id":"a"}|not json` || d.Bad.Count != 1 || !strings.Contains(d.Bad.String(), ":3: a bad line") {
		t.Errorf("lines %q, bad %d (%s); want the first two and line 3 bad", got, d.Bad.Count, d.Bad.String())
	}
}
