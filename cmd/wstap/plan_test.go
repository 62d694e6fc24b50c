package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const jmxDir = "../../testdata/jmx"

func runPlanCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"plan"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// TestPlanCommandText: the plan with a filter that replies and one that
// discards gets the right rule for each thread group.
func TestPlanCommandText(t *testing.T) {
	code, out, errOut := runPlanCmd(t, filepath.Join(jmxDir, "reply-and-discard.jmx"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	replies := strings.Index(out, "Thread group 'Replies to pings'")
	discards := strings.Index(out, "Thread group 'Discards pings'")
	rule := strings.Index(out, "plan-pings-discarded: Ping/Pong Frame Filter 'Ping/Pong filter'")
	if replies < 0 || discards < replies || rule < discards || strings.Count(out, "plan-") != 1 {
		t.Errorf("want one plan-pings-discarded, under 'Discards pings' only:\n%s", out)
	}
	wantLines(t, out, "answers pings only while reading, up to 0 s late", "discards the server's pings",
		`filter "Ping/Pong filter" (pings: discard)`, "header Sec-WebSocket-Protocol: v1.chat")
}

// TestPlanCommandJSON: the members of the JSON document, exactly.
func TestPlanCommandJSON(t *testing.T) {
	code, out, errOut := runPlanCmd(t, "--json", filepath.Join(jmxDir, "think-time.jmx"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc map[string][]map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(doc) != 1 || len(doc["thread_groups"]) != 1 {
		t.Fatalf("want {\"thread_groups\": [one]}, got:\n%s", out)
	}
	g := doc["thread_groups"][0]
	var keys []string
	for k := range g {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"findings", "name", "ramp_up_s", "samplers", "threads"}; !slices.Equal(keys, want) {
		t.Errorf("thread group members %q, want %q", keys, want)
	}
	var findings []map[string]string
	json.Unmarshal(g["findings"], &findings)
	if len(findings) != 1 || findings[0]["rule"] != "plan-pongs-late" || !strings.Contains(findings[0]["detail"], "30 s") {
		t.Errorf("findings %v, want plan-pongs-late with 30 s", findings)
	}
	if string(g["threads"]) != "100" || string(g["ramp_up_s"]) != "10" {
		t.Errorf("threads %s ramp_up_s %s, want 100 and 10", g["threads"], g["ramp_up_s"])
	}
}

// TestPlanCommandIdle: --idle moves the plan-no-keepalive line.
func TestPlanCommandIdle(t *testing.T) {
	plan := filepath.Join(jmxDir, "no-keepalive.jmx")
	_, out60, _ := runPlanCmd(t, plan)
	_, out120, _ := runPlanCmd(t, plan, "--idle", "2m")
	if strings.Count(out60, "plan-no-keepalive") != 2 || !strings.Contains(out60, "for 90 s, longer than the idle timeout of 60 s") {
		t.Errorf("--idle 60s (default): want two plan-no-keepalive, one of 90 s:\n%s", out60)
	}
	if strings.Count(out120, "plan-no-keepalive") != 1 {
		t.Errorf("--idle 2m: want plan-no-keepalive for 'Listen only' alone:\n%s", out120)
	}
}

// TestPlanCommandRedacts: a literal token is never printed.
func TestPlanCommandRedacts(t *testing.T) {
	for _, args := range [][]string{{}, {"--json"}} {
		code, out, _ := runPlanCmd(t, append(args, filepath.Join(jmxDir, "token-shared.jmx"))...)
		if code != 0 || strings.Contains(out, "eyJhbGciOiJIUzI1NiJ9") || !strings.Contains(out, "Bearer [redacted]") {
			t.Errorf("%v: exit %d, want the token redacted:\n%s", args, code, out)
		}
	}
}

// TestPlanCommandErrors: a file that is not a plan, a missing one, bad
// flags: exit 2 and a message naming the file or flag.
func TestPlanCommandErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{filepath.Join(jmxDir, "not-a-plan.jmx")}, "not-a-plan.jmx is not a JMeter test plan: root element is <project>"},
		{[]string{filepath.Join(jmxDir, "not-xml.jmx")}, "not-xml.jmx is not a JMeter test plan"},
		{[]string{filepath.Join(jmxDir, "missing.jmx")}, "missing.jmx: no such file"},
		{nil, "want one FILE.jmx, got 0"},
		{[]string{"a.jmx", "b.jmx"}, "want one FILE.jmx, got 2"},
		{[]string{"--idle", "0s", filepath.Join(jmxDir, "clean.jmx")}, "--idle 0s"},
	} {
		code, out, errOut := runPlanCmd(t, c.args...)
		if code != 2 || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, stderr %q, stdout %q; want 2 and %q", c.args, code, errOut, out, c.want)
		}
	}
	code, out, _ := runPlanCmd(t, "--help")
	if code != 0 || !strings.Contains(out, "plan-new-connection-each-iteration") {
		t.Errorf("--help: exit %d:\n%s", code, out)
	}
}
