package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wstap/wstap/capture/record"
	"github.com/wstap/wstap/capture/report"
)

// writeReportRun writes a run dir of n sessions, every third one dropped by
// the upstream (1006) after 2 s of silence, plus one 429 REST call.
func writeReportRun(t *testing.T, dir string, n int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	var sessions, events bytes.Buffer
	for i := range n {
		start := t0.Add(time.Duration(i) * time.Second)
		code := 1000
		r := record.Session{ID: fmt.Sprintf("s%d", i), Target: "wss://chat.example.com/ws", Start: start,
			DurationMS: 10000, Handshake: record.Handshake{Status: 101}, Verdict: record.VerdictClean,
			End:             record.End{At: start.Add(10 * time.Second), First: record.SideClient, How: record.HowCloseHandshake},
			ConcurrentAtEnd: 1}
		if i%3 == 0 {
			code = 1006
			r.Verdict, r.Abnormal = record.VerdictAbnormalUp, true
			r.End.First, r.End.How = record.SideUpstream, record.HowEOF
			r.Keepalive.SilenceBeforeEnd = 2000
		}
		r.ClientCloseCode, r.UpstreamCloseCode = &code, &code
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		sessions.Write(append(b, '\n'))
	}
	fmt.Fprintf(&events, `{"time":%q,"level":"info","session":"","event":"http","method":"GET","url":"https://chat.example.com/api","status":429,"latency_ms":3}`+"\n",
		t0.Format(time.RFC3339Nano))
	for name, b := range map[string][]byte{"sessions.jsonl": sessions.Bytes(), "events.jsonl": events.Bytes(),
		"run.json": []byte(`{"version":"test","counters":{"sessions":` + fmt.Sprint(n) + `,"events_dropped":2}}`)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReportCommandText(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	writeReportRun(t, dir, 9)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"report", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"Sessions: 9 (9 upgraded)",
		"1006 (abnormal closure): 3 of 9 upgraded sessions (33.3%)",
		"dropped by: upstream 3",
		"429        1   ← throttled",
		"events dropped 2",
		"HTML report: " + filepath.Join(dir, "report.html"),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	page, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(page, []byte(`data-verdict="abnormal-upstream-drop">3<`)) {
		t.Error("report.html lacks the verdict count 3 of abnormal-upstream-drop")
	}
}

// TestReportCommandMerge: two run dirs, flags after them, JSON out, the page
// where --html says.
func TestReportCommandMerge(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	writeReportRun(t, a, 9)
	writeReportRun(t, b, 6)
	page := filepath.Join(root, "merged.html")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"report", a, b, "--json", "--html", page}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var s report.Summary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout.String())
	}
	if s.Sessions != 15 || s.Abnormal != 5 || s.HTTP.Throttled != 2 || s.Counters.EventsDropped != 4 || len(s.Runs) != 2 {
		t.Errorf("merged summary: %d sessions, %d abnormal, %d 429s, %d events dropped, %d runs; want 15, 5, 2, 4, 2",
			s.Sessions, s.Abnormal, s.HTTP.Throttled, s.Counters.EventsDropped, len(s.Runs))
	}
	if _, err := os.Stat(page); err != nil {
		t.Errorf("--html page: %v", err)
	}
	for _, d := range []string{a, b} {
		if _, err := os.Stat(filepath.Join(d, "report.html")); err == nil {
			t.Errorf("merged report also wrote %s/report.html", d)
		}
	}
}

func TestReportCommandErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-run")
	cases := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"report", missing}, 1, "", missing},
		{[]string{"report"}, 2, "", "no RUN_DIR given"},
		{[]string{"report", "--bogus", missing}, 2, "", "bogus"},
		{[]string{"report", "--help"}, 0, "Examples:\n  wstap report wstap-runs/", ""},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		code := run(c.args, &stdout, &stderr)
		if code != c.code || !strings.Contains(stdout.String(), c.stdout) || !strings.Contains(stderr.String(), c.stderr) {
			t.Errorf("wstap %s: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
				strings.Join(c.args, " "), code, stdout.String(), stderr.String(), c.code, c.stdout, c.stderr)
		}
	}
}

// TestReportPlan: --plan puts the plan's findings beside the run's causes
// (text, JSON and the page); a file that is not a plan exits 2 naming it.
func TestReportPlan(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "..", "testdata", "rundir", "demo"))); err != nil {
		t.Fatal(err)
	}
	plan := filepath.Join("..", "..", "testdata", "jmx", "think-time.jmx")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"report", dir, "--plan", plan}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"The JMeter plan (" + plan + ")", "plan-pongs-late", "plan-no-keepalive",
		`beside the run: thread group "Chat with think time" sends nothing for up to 30 s; the upstream dropped 10 sessions after 1.0 s of client silence (idle-timeout)`} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, stdout.String())
		}
	}
	page, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil || !bytes.Contains(page, []byte(`data-beside="1"`)) {
		t.Errorf("report.html lacks the plan beside the run (%v)", err)
	}
	stdout.Reset()
	if code := run([]string{"report", dir, "--json", "--plan", plan}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var doc struct {
		Plan struct {
			ThreadGroups []struct {
				Findings []struct{ Rule string }
			} `json:"thread_groups"`
			Beside []string
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil || len(doc.Plan.ThreadGroups) != 1 || len(doc.Plan.Beside) != 1 ||
		len(doc.Plan.ThreadGroups[0].Findings) == 0 {
		t.Errorf("JSON plan %+v (%v)", doc.Plan, err)
	}
	stderr.Reset()
	bad := filepath.Join("..", "..", "testdata", "jmx", "not-a-plan.jmx")
	if code := run([]string{"report", dir, "--plan", bad}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), bad) {
		t.Errorf("not a plan: exit %d, stderr %q; want 2 naming the file", code, stderr.String())
	}
}
