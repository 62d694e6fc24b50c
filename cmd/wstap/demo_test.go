package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wstap/wstap/capture"
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
	for _, want := range []string{"abnormal-upstream-drop", "an idle timeout near", "report.html", "evidence.tar.gz"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	recs := testkit.ReadJSONL[capture.SessionRecord](t, filepath.Join(dir, "sessions.jsonl"))
	if len(recs) != o.sessions {
		t.Fatalf("%d records, want %d", len(recs), o.sessions)
	}
	capN := 40*33/100 + 40*27/100 + 40*17/100 + 1
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
	for _, f := range []string{"report.html", "evidence.tar.gz", "capture.pcapng", "events.jsonl", "run.json", "keylog.txt"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty: %v", f, err)
		}
	}
}
