package main

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wstap/wstap/capture/record"
	"github.com/wstap/wstap/internal/testkit"
)

// What the tests with real outside clients (Chromium, Python's websockets)
// share: the wstap binary in either mode, a TLS upstream whose certificate
// wstap is told to trust, and the checks every session record must pass.

// startWstap runs "wstap proxy --listen ADDR --out out ARGS..." from the
// built binary (without -race, as a user runs it) and waits until it
// listens. Without --upstream in args it runs in forward mode.
func startWstap(t *testing.T, out string, args ...string) *proxyProc {
	t.Helper()
	p := &proxyProc{addr: testkit.FreeAddr(t), out: out, stderr: &testkit.SyncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(testkit.BuildWstap(t), append([]string{"proxy", "--listen", p.addr, "--out", out}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.stderr, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	testkit.WaitListening(t, p.addr, p.stderr)
	return p
}

// stop ends the proxy with SIGTERM, as a user does, and wants exit code 0.
func (p *proxyProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM to wstap: %v", err)
	}
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("wstap exited %d after SIGTERM, want 0; output:\n%s", code, p.stderr)
	}
}

// waitSessions waits up to 15 s until sessions.jsonl holds n records.
func (p *proxyProc) waitSessions(t *testing.T, n int) {
	t.Helper()
	path := filepath.Join(p.out, "sessions.jsonl")
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(path); err == nil && strings.Count(string(b), "\n") >= n {
			return
		}
	}
	b, _ := os.ReadFile(path)
	t.Fatalf("sessions.jsonl has not %d records after 15s:\n%s\nwstap output:\n%s", n, b, p.stderr)
}

// runFiles is what a stopped proxy left in its run dir.
type runFiles struct {
	sessions []record.Session
	events   []map[string]any
	counters map[string]any
}

// readRun reads sessions.jsonl, events.jsonl and the counters of run.json.
func readRun(t *testing.T, dir string) runFiles {
	t.Helper()
	rf := runFiles{
		sessions: testkit.ReadJSONL[record.Session](t, filepath.Join(dir, "sessions.jsonl")),
		events:   testkit.ReadJSONL[map[string]any](t, filepath.Join(dir, "events.jsonl")),
	}
	b, err := os.ReadFile(filepath.Join(dir, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	var run struct {
		Counters map[string]any `json:"counters"`
	}
	if err := json.Unmarshal(b, &run); err != nil {
		t.Fatalf("run.json: %v", err)
	}
	rf.counters = run.Counters
	return rf
}

// eventsNamed returns the events of one name ("http", "rejected"...).
func (rf runFiles) eventsNamed(name string) []map[string]any {
	var out []map[string]any
	for _, e := range rf.events {
		if e["event"] == name {
			out = append(out, e)
		}
	}
	return out
}

// tlsUpstream serves h over TLS with httptest's certificate, written to a PEM
// file for --upstream-ca. It returns the server and that file.
func tlsUpstream(t *testing.T, h http.Handler) (*httptest.Server, string) {
	t.Helper()
	ts := httptest.NewTLSServer(h)
	t.Cleanup(ts.Close)
	file := filepath.Join(t.TempDir(), "upstream-ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return ts, file
}

// checkComplete checks what every upgraded session record holds whoever the
// client: ids and times, the handshake both ways, the TLS of both legs (or
// none), the close frames (nil where a side sent none) and a verdict.
func checkComplete(t *testing.T, r record.Session, wantTLS bool) {
	t.Helper()
	if r.ID == "" || r.ClientAddr == "" || r.Start.IsZero() || r.End.At.Before(r.Start) || r.DurationMS <= 0 {
		t.Errorf("id %q client %q start %v end %v duration %v ms: want all set", r.ID, r.ClientAddr, r.Start, r.End.At, r.DurationMS)
	}
	h := r.Handshake
	if h.Status != 101 || h.LatencyMS <= 0 || !hasHeader(h.RequestHeaders, "Sec-WebSocket-Key") ||
		!hasHeader(h.RequestHeaders, "Upgrade") || !hasHeader(h.ResponseHeaders, "Sec-WebSocket-Accept") {
		t.Errorf("handshake %+v: want 101, a latency, the key and the accept", h)
	}
	for leg, l := range map[string]*record.TLSLeg{"client": r.TLS.Client, "upstream": r.TLS.Upstream} {
		switch {
		case !wantTLS && l != nil:
			t.Errorf("TLS %s leg %+v on a plain session, want null", leg, l)
		case wantTLS && l == nil:
			t.Errorf("TLS %s leg null, want it recorded", leg)
		case wantTLS && (!strings.HasPrefix(l.Version, "TLS 1.") || l.Cipher == "" || l.Error != "" || l.End == ""):
			t.Errorf("TLS %s leg %+v: want a version, a cipher, no error and how it ended", leg, l)
		}
	}
	for dir, f := range map[string]record.DirFrames{"client→upstream": r.Frames.ClientToUpstream, "upstream→client": r.Frames.UpstreamToClient} {
		if f.Frames != f.Text+f.Binary+f.Continuation+f.Ping+f.Pong+f.Close || f.Tunnel {
			t.Errorf("%s frames %+v: the kinds do not add up, or a byte tunnel", dir, f)
		}
	}
	if r.Verdict == "" || r.End.First == "" || r.End.How == "" {
		t.Errorf("verdict %q end %+v: want both set", r.Verdict, r.End)
	}
	for _, f := range r.Findings {
		if f.Severity != record.SevInfo {
			t.Errorf("finding on a session of a well-behaved client: %+v", f)
		}
	}
}

// hasHeader reports whether headers hold name (case-insensitive).
func hasHeader(headers []record.Header, name string) bool {
	return headerValue(headers, name) != ""
}

// headerValue is the value of the first header called name, or "".
func headerValue(headers []record.Header, name string) string {
	for _, h := range headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// closeFrame checks one side's close frame.
func closeFrame(t *testing.T, side string, c *record.CloseFrame, code int, reason string) {
	t.Helper()
	if c == nil || c.Code != code || c.Reason != reason || c.At.IsZero() {
		t.Errorf("close frame of the %s %+v, want %d %q with its time", side, c, code, reason)
	}
}

// within reports whether got is within frac of want.
func within(got, want, frac float64) bool {
	return got >= want*(1-frac) && got <= want*(1+frac)
}
