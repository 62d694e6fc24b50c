package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wstap/wstap/capture/record"
)

// writeSessions writes a sessions.jsonl whose sessions carry the given
// findings ("rule/severity" each), plus the extra raw lines, into a new run
// dir.
func writeSessions(t *testing.T, sessions map[string][]string, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	var b bytes.Buffer
	ids := make([]string, 0, len(sessions))
	for id := range sessions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		rec := record.Session{ID: id, Findings: []record.Finding{}}
		for _, f := range sessions[id] {
			rule, sev, _ := strings.Cut(f, "/")
			rec.Findings = append(rec.Findings, record.Finding{Rule: rule, Severity: sev, Detail: rule + " in " + id})
		}
		line, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "sessions.jsonl"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// sample has accept-mismatch on 2 sessions, key-format on 4 (twice on s-4),
// subprotocol-ignored (warn) on 5 and compression-offered (info) on 1.
var sample = map[string][]string{
	"s-1": {"accept-mismatch/error", "subprotocol-ignored/warn", "key-format/error"},
	"s-2": {"accept-mismatch/error", "subprotocol-ignored/warn", "key-format/error"},
	"s-3": {"subprotocol-ignored/warn", "key-format/error"},
	"s-4": {"subprotocol-ignored/warn", "key-format/error", "key-format/error"},
	"s-5": {"subprotocol-ignored/warn", "compression-offered/info"},
	"s-6": {},
}

func TestAuditCommandText(t *testing.T) {
	dir := writeSessions(t, sample, `{"id": "s-7", "findings": [`, "", "not json")
	var out, errb bytes.Buffer
	if code := run([]string{"audit", dir}, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errb.String())
	}
	text := out.String()
	if !strings.HasPrefix(text, "6 sessions in 1 run dir(s), 5 with findings, 2 unparsable lines skipped\n") {
		t.Errorf("summary line:\n%s", text)
	}
	sessions := filepath.Join(dir, "sessions.jsonl")
	for _, want := range []string{"2 lines that do not parse left out", sessions + ":7: ", sessions + ":9: "} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr %q does not say %q", errb.String(), want)
		}
	}
	// Errors first, the most frequent first; then warnings, then notes.
	order := []string{"key-format", "accept-mismatch", "subprotocol-ignored", "compression-offered"}
	last := -1
	for _, rule := range order {
		i := strings.Index(text, rule+" ")
		if i < last {
			t.Errorf("%s is out of order:\n%s", rule, text)
		}
		last = i
	}
	for _, want := range []string{
		"error     key-format                  4  s-1, s-2, s-3\n",
		"error     accept-mismatch             2  s-1, s-2\n",
		"warn      subprotocol-ignored         5  s-1, s-2, s-3\n",
		"info      compression-offered         1  s-5\n",
		"e.g. key-format in s-1\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

func TestAuditCommandJSON(t *testing.T) {
	a := writeSessions(t, sample)
	b := writeSessions(t, map[string][]string{"s-1": {"accept-mismatch/error"}})
	var out, errb bytes.Buffer
	// Flags may follow the run dirs; a sessions.jsonl path works as a run dir.
	if code := run([]string{"audit", a, filepath.Join(b, "sessions.jsonl"), "--json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errb.String())
	}
	var sum auditSummary
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if sum.Sessions != 7 || sum.SessionsWithFindings != 6 || sum.SkippedLines != 0 || len(sum.RunDirs) != 2 {
		t.Errorf("summary %+v", sum)
	}
	var rules []string
	for _, rc := range sum.Rules {
		rules = append(rules, rc.Rule)
	}
	if want := []string{"key-format", "accept-mismatch", "subprotocol-ignored", "compression-offered"}; !slices.Equal(rules, want) {
		t.Errorf("rules %v, want %v", rules, want)
	}
	kf := sum.Rules[0]
	if kf.Sessions != 4 || kf.Findings != 5 || kf.Severity != "error" {
		t.Errorf("key-format %+v", kf)
	}
	am := sum.Rules[1]
	base := func(d string) string { return filepath.Base(d) + "/" }
	if want := []string{base(a) + "s-1", base(a) + "s-2", "sessions.jsonl/s-1"}; am.Sessions != 3 || !slices.Equal(am.Examples, want) {
		t.Errorf("accept-mismatch %+v, want examples %v", am, want)
	}
}

func TestAuditCommandNoFindings(t *testing.T) {
	dir := writeSessions(t, map[string][]string{"s-1": {}})
	var out, errb bytes.Buffer
	if code := run([]string{"audit", dir}, &out, &errb); code != 0 || !strings.Contains(out.String(), "no findings") {
		t.Errorf("exit %d, output %q", code, out.String())
	}
}

func TestAuditCommandErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	noSessions := t.TempDir()
	if err := os.WriteFile(filepath.Join(noSessions, "run.json"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"missing run dir", []string{missing}, 1, "", "run dir " + missing},
		{"no sessions.jsonl", []string{noSessions}, 1, "", "run dir " + noSessions + ": no sessions.jsonl"},
		{"missing file", []string{filepath.Join(noSessions, "run.json"), missing + ".jsonl"}, 1, "", missing + ".jsonl"},
		{"no run dir", nil, 2, "", "no RUN_DIR given"},
		{"unknown flag", []string{"--bogus"}, 2, "", "-bogus"},
		{"help", []string{"--help"}, 0, "Examples:\n  wstap audit wstap-runs/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(append([]string{"audit"}, tt.args...), &out, &errb)
			if code != tt.code || !strings.Contains(out.String(), tt.stdout) || !strings.Contains(errb.String(), tt.stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, %q, %q", code, out.String(), errb.String(), tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}
