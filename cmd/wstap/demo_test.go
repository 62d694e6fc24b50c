package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wstap/wstap/capture/record"
	"github.com/wstap/wstap/capture/report"
	"github.com/wstap/wstap/internal/testkit"
)

// TestDemoConclusions runs the demo at small scale and checks that its
// records tell the story: silent sessions dropped after the idle timeout,
// over-cap ones reset above the cap, pinging ones outliving the idle
// timeout, clean ones clean.
func TestDemoConclusions(t *testing.T) {
	const idle = 2 * time.Second
	o := demoOptions{sessions: 40, idle: idle, out: filepath.Join(t.TempDir(), "run")}
	var out strings.Builder
	dir, err := demo(context.Background(), o, &out, io.Discard)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	capN := 40*33/100 + 40*27/100 + 40*17/100 + 1
	for _, want := range []string{"abnormal-upstream-drop", "report.html", "evidence.tar.gz",
		fmt.Sprintf("concurrency-cap (scope all, level %d) — 10 sessions", capN), "idle-timeout (",
		"pongs did not keep them alive", "1. idle-timeout     confirmed", "5. concurrency-cap  confirmed",
		"2. late-pong        ruled-out", "4. tls              ruled-out"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	recs := testkit.ReadJSONL[record.Session](t, filepath.Join(dir, "sessions.jsonl"))
	if len(recs) != o.sessions {
		t.Fatalf("%d records, want %d", len(recs), o.sessions)
	}
	groups := map[string]int{}
	for _, r := range recs {
		g := r.Target[strings.Index(r.Target, "group=")+len("group="):]
		groups[g]++
		switch g {
		case "silent":
			// The platform's idle timer starts when it has sent the 101,
			// a moment before wstap relays it, so the silence is all but
			// idle at least; a loaded machine can only delay the drop, and
			// not by a second idle period.
			sil := time.Duration(r.Keepalive.ClientSilenceBeforeEndMS * float64(time.Millisecond))
			if r.Verdict != "abnormal-upstream-drop" || r.End.How != "eof" || sil < idle*9/10 || sil >= 2*idle {
				t.Errorf("silent %s: verdict %s how %s client silence %s, want an upstream FIN after at least ~%s and before %s", r.ID, r.Verdict, r.End.How, sil, idle, 2*idle)
			}
		case "over-cap":
			if r.Verdict != "abnormal-upstream-drop" || r.End.How != "reset" || r.ConcurrentAtEnd <= capN {
				t.Errorf("over-cap %s: verdict %s how %s concurrent_at_end %d, want a reset above %d", r.ID, r.Verdict, r.End.How, r.ConcurrentAtEnd, capN)
			}
		case "pinging":
			if r.Verdict != "clean" || r.DurationMS < float64(idle/time.Millisecond) || r.Keepalive.ClientPings == 0 {
				t.Errorf("pinging %s: verdict %s duration %.0f ms pings %d, want clean and older than the idle timeout", r.ID, r.Verdict, r.DurationMS, r.Keepalive.ClientPings)
			}
		case "clean", "no-subprotocol":
			if r.Verdict != "clean" || r.Abnormal {
				t.Errorf("%s %s: verdict %s", g, r.ID, r.Verdict)
			}
		default:
			t.Errorf("record %s of unknown group %q", r.ID, g)
		}
	}
	if groups["no-subprotocol"] != 1 || groups["silent"] == 0 || groups["over-cap"] == 0 {
		t.Errorf("groups %v", groups)
	}
	demoCauses(t, dir, idle, capN, groups["silent"], groups["over-cap"])
	for _, f := range []string{"report.html", "evidence.tar.gz", "capture.pcapng", "events.jsonl", "run.json", "keylog.txt"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty: %v", f, err)
		}
	}
}

// demoCauses checks the demo's two causes from its records: the cap at its
// exact level holding the over-cap sessions, the idle timeout near its value
// holding the silent ones, and nothing else.
func demoCauses(t *testing.T, dir string, idle time.Duration, capN, silent, overCap int) {
	t.Helper()
	run, err := report.LoadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	causes := report.Summarize(run).Causes
	if len(causes) != 2 {
		t.Fatalf("%d causes, want the cap and the idle timeout: %+v", len(causes), causes)
	}
	for _, c := range causes {
		switch c.Cause {
		case report.CauseCap:
			if c.Scope != report.ScopeAll || c.Level != capN || c.Sessions != overCap {
				t.Errorf("cap: scope %s level %d sessions %d, want all %d %d", c.Scope, c.Level, c.Sessions, capN, overCap)
			}
		case report.CauseIdle:
			if c.Seconds < 0.9*idle.Seconds() || c.Seconds >= 1.5*idle.Seconds() || c.Sessions != silent ||
				!strings.Contains(c.Evidence, "pongs did not keep them alive") {
				t.Errorf("idle: %.1f s, %d sessions, %q; want %v, %d sessions, pongs named", c.Seconds, c.Sessions, c.Evidence, idle, silent)
			}
		default:
			t.Errorf("unexpected cause %s: %s", c.Cause, c.Evidence)
		}
	}
}
