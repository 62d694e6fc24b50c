package proxy

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wstap/wstap/capture/record"
	"github.com/wstap/wstap/internal/testkit"
)

// Issue 16's measurement: sessions live 3.5 s, send a message and a ping
// every 500 ms, and the server renegotiates each one 1 s after it opens.
const (
	renegSessions = 200
	renegConc     = 50
	renegLife     = 3500 * time.Millisecond
	renegEvery    = 500 * time.Millisecond
	renegAfter    = time.Second
)

// upstreamCert writes a leaf for 127.0.0.1 from a fresh CA: the cert and key
// files a TLS server outside Go loads, the CA's PEM file for its clients, and
// the pool wstap trusts it with.
func upstreamCert(t *testing.T) (certFile, keyFile, caFile string, pool *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	ca, leaf := caLeaf(t)
	certFile, keyFile, caFile = filepath.Join(dir, "up.pem"), filepath.Join(dir, "up-key.pem"), filepath.Join(dir, "ca.pem")
	writePEM(t, certFile, "CERTIFICATE", leaf.Certificate[0])
	keyDER, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	exportCA(t, ca, caFile)
	return certFile, keyFile, caFile, ca.Pool()
}

func exportCA(t *testing.T, ca *CA, file string) {
	t.Helper()
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := ca.ExportPEM(f); err != nil {
		t.Fatal(err)
	}
}

// nodeWS returns node and a NODE_PATH holding the `ws` package, installed
// with npm into a temporary directory.
func nodeWS(t *testing.T) (node string, env []string) {
	t.Helper()
	node = testkit.NeedTool(t, "node")
	npm := testkit.NeedTool(t, "npm")
	dir := t.TempDir()
	cmd := exec.Command(npm, "install", "--no-audit", "--no-fund", "--prefix", dir, "ws@8")
	if out, err := cmd.CombinedOutput(); err != nil {
		testkit.SkipOrFail(t, "npm install ws (Node's WebSocket package, from the npm registry) failed: %v\n%s", err, out)
	}
	return node, append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
}

// nodeRun is the summary ws-sessions.js prints.
type nodeRun struct {
	Sessions int            `json:"sessions"`
	Failed   int            `json:"failed"`
	Codes    map[string]int `json:"codes"`
	Errors   []string       `json:"errors"`
}

// runNodeSessions runs testdata/ws-sessions.js against url.
func runNodeSessions(t *testing.T, node string, env []string, url, caFile string) nodeRun {
	t.Helper()
	cmd := exec.Command(node, "testdata/ws-sessions.js", url, caFile, fmt.Sprint(renegSessions), fmt.Sprint(renegConc),
		fmt.Sprint(renegLife.Milliseconds()), fmt.Sprint(renegEvery.Milliseconds()))
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node ws-sessions.js %s: %v\n%s", url, err, out)
	}
	var r nodeRun
	if err := json.Unmarshal(out, &r); err != nil || r.Sessions != renegSessions {
		t.Fatalf("node ws-sessions.js %s printed %q (%v), want %d sessions", url, out, err, renegSessions)
	}
	return r
}

// startNodeRenegServer runs testdata/renegotiating-ws-server.js.
func startNodeRenegServer(t *testing.T, node string, env []string, certFile, keyFile string) (port string, out *testkit.SyncBuffer) {
	t.Helper()
	out = &testkit.SyncBuffer{}
	cmd := exec.Command(node, "testdata/renegotiating-ws-server.js", certFile, keyFile, fmt.Sprint(renegAfter.Milliseconds()))
	cmd.Env, cmd.Stdout, cmd.Stderr = env, out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	re := regexp.MustCompile(`listening (\d+)`)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1], out
		}
		if time.Now().After(deadline) {
			t.Fatalf("node server did not start: %s", out)
		}
	}
}

// TestNodeRenegotiationThroughProxy: issue 16's run with real peers, a Node
// `ws` server (OpenSSL) renegotiating TLS 1.2 under traffic and Node `ws`
// clients, 200 sessions direct and 200 through wstap. Through wstap, no more
// sessions may fail than direct (plus 2 percentage points), and each
// session's renegotiation is recorded once, with the outcome the server saw.
func TestNodeRenegotiationThroughProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 400 sessions of 3.5 s")
	}
	node, env := nodeWS(t)
	certFile, keyFile, caFile, pool := upstreamCert(t)
	port, out := startNodeRenegServer(t, node, env, certFile, keyFile)

	direct := runNodeSessions(t, node, env, "wss://127.0.0.1:"+port+"/", caFile)
	directLog := out.String()

	p := startTestProxy(t, "wss://127.0.0.1:"+port, true, pool)
	proxyCA := filepath.Join(t.TempDir(), "wstap-ca.pem")
	exportCA(t, p.ca, proxyCA)
	via := runNodeSessions(t, node, env, p.url("/"), proxyCA)
	serverLog := strings.TrimPrefix(out.String(), directLog)
	recs := p.records()

	t.Logf("direct: %d of %d failed %v %v", direct.Failed, direct.Sessions, direct.Codes, direct.Errors)
	t.Logf("through wstap: %d of %d failed %v %v", via.Failed, via.Sessions, via.Codes, via.Errors)
	if share, limit := ratioOf(via.Failed, via.Sessions), ratioOf(direct.Failed, direct.Sessions)+0.02; share > limit {
		t.Errorf("through wstap %.1f%% of the sessions failed, direct %.1f%%: more than 2 points worse",
			100*share, 100*ratioOf(direct.Failed, direct.Sessions))
	}
	checkRenegotiationRecords(t, p.dir, recs, serverLog)
}

func ratioOf(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

// renegEvent is a tls-renegotiation line of events.jsonl.
type renegEvent struct {
	Session     string  `json:"session"`
	Event       string  `json:"event"`
	Leg         string  `json:"leg"`
	Initiator   string  `json:"initiator"`
	Outcome     string  `json:"outcome"`
	Alert       string  `json:"alert"`
	Error       string  `json:"error"`
	DurationMS  float64 `json:"duration_ms"`
	HeldRecords int     `json:"held_records"`
}

func renegEvents(t *testing.T, dir string) []renegEvent {
	t.Helper()
	var out []renegEvent
	for _, e := range testkit.ReadJSONL[renegEvent](t, filepath.Join(dir, "events.jsonl")) {
		if e.Event == "tls-renegotiation" {
			out = append(out, e)
		}
	}
	return out
}

// checkRenegotiationRecords: one event and one count per renegotiation the
// server asked for, with the outcome the server logged (serverLog: its
// "reneg ok" and "reneg failed" lines of the sessions through wstap).
func checkRenegotiationRecords(t *testing.T, dir string, recs []record.Session, serverLog string) {
	t.Helper()
	evs := renegEvents(t, dir)
	bySession := map[string]int{}
	outcomes := map[string]int{}
	held := 0
	for _, e := range evs {
		bySession[e.Session]++
		outcomes[e.Outcome]++
		held += e.HeldRecords
		if e.Leg != "upstream" || e.Initiator != "upstream" {
			t.Errorf("event %+v, want leg and initiator upstream", e)
		}
	}
	for _, r := range recs {
		n := 0
		if r.TLS.Upstream != nil {
			n = r.TLS.Upstream.Renegotiations
		}
		lived := r.DurationMS > float64(renegAfter.Milliseconds()+200)
		if n != bySession[r.ID] || n > 1 || (lived && n != 1) {
			t.Errorf("%s (%.0f ms, %s): tls.upstream.renegotiations %d, %d events; want 1 of each",
				r.ID, r.DurationMS, r.Verdict, n, bySession[r.ID])
		}
	}
	ok, failed := strings.Count(serverLog, "reneg ok"), strings.Count(serverLog, "reneg failed")
	t.Logf("renegotiations through wstap: events %v (held %d records in all); the server logged %d ok, %d failed", outcomes, held, ok, failed)
	if held == 0 {
		t.Error("no application data arrived during a renegotiation: the run did not exercise what crypto/tls fails on")
	}
	if outcomes["accepted"] != ok || outcomes["failed"] != failed || outcomes["refused"] != 0 {
		t.Errorf("outcomes %v, the server saw %d ok and %d failed", outcomes, ok, failed)
	}
}
