package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wstap/wstap/capture/record"
	"github.com/wstap/wstap/internal/testkit"
)

// Issue 14, item 2: Python's websockets library (Debian's python3-websockets)
// through reverse mode with its own keep-alive, ping_interval. The client is
// testdata/python/wsclient.py: the library's connect, send, recv and close,
// nothing of ours.

// pythonPingInterval is the ping_interval the library is given.
const pythonPingInterval = 700 * time.Millisecond

// needPythonWebsockets returns a python3 that imports websockets, and the
// library's version. PATH's python3 may be another one (pyenv, a venv), so
// Debian's /usr/bin/python3 is tried too. When none has it, the test skips,
// or fails under WSTAP_TEST_STRICT=1.
func needPythonWebsockets(t *testing.T) (python, version string) {
	t.Helper()
	var tried []string
	for _, name := range []string{"python3", "/usr/bin/python3"} {
		p, err := exec.LookPath(name)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		out, err := exec.Command(p, "-c", "import websockets; print(websockets.__version__)").CombinedOutput()
		if err == nil {
			return p, strings.TrimSpace(string(out))
		}
		tried = append(tried, fmt.Sprintf("%s: %s", p, strings.TrimSpace(lastLine(string(out)))))
	}
	testkit.SkipOrFail(t, "no python3 with the websockets module (apt-get install python3 python3-websockets); tried %s",
		strings.Join(tried, "; "))
	return "", ""
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// pythonResult is the JSON line wsclient.py prints.
type pythonResult struct {
	Version     string  `json:"version"`
	Echoes      int     `json:"echoes"`
	CloseCode   int     `json:"close_code"`
	CloseReason string  `json:"close_reason"`
	Unexpected  bool    `json:"unexpected_message"`
	CloseSecs   float64 `json:"close_seconds"`
}

// runPythonClient runs wsclient.py with args and decodes its last line.
func runPythonClient(t *testing.T, python string, args ...string) pythonResult {
	t.Helper()
	script := filepath.Join("..", "..", "testdata", "python", "wsclient.py")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, append([]string{script}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", python, strings.Join(args, " "), err, out)
	}
	var res pythonResult
	if err := json.Unmarshal([]byte(lastLine(string(out))), &res); err != nil {
		t.Fatalf("wsclient.py printed %q: %v", out, err)
	}
	return res
}

// checkPythonPings: the library's pings were recorded, answered, and their
// interval is the one it was given. websockets sleeps ping_interval, then
// pings and waits for the pong, so an interval is ping_interval plus a
// round trip: at least 0.9×, within 20%.
func checkPythonPings(t *testing.T, r record.Session) {
	t.Helper()
	k := r.Keepalive
	given := float64(pythonPingInterval.Milliseconds())
	iv := k.ClientPingIntervalMS
	if iv == nil || iv.P50 < 0.9*given || !within(iv.P50, given, 0.2) {
		t.Errorf("client ping interval %+v ms, want p50 ≥ %.0f and within 20%% of the %.0f ms the library was given", iv, 0.9*given, given)
	}
	if k.ClientPings < 3 || r.Frames.ClientToUpstream.Ping != k.ClientPings || r.Frames.UpstreamToClient.Pong < k.ClientPings-1 {
		t.Errorf("client pings %d, frames %+v: want 3 or more, each answered but perhaps the last", k.ClientPings, r.Frames)
	}
	if k.UpstreamPongRTTMS == nil || k.UpstreamPongRTTMS.Max > 1000 {
		t.Errorf("upstream pong RTT %+v, want gorilla's pongs timed, under 1 s", k.UpstreamPongRTTMS)
	}
	if iv != nil {
		t.Logf("websockets ping_interval=%.1f s: recorded client ping interval min %.1f p50 %.1f max %.1f ms over %d pings",
			pythonPingInterval.Seconds(), iv.Min, iv.P50, iv.Max, k.ClientPings)
	}
}

// pythonRecord stops the proxy and returns its only session record, after
// checking that the run counts one session.
func pythonRecord(t *testing.T, p *proxyProc, target string) record.Session {
	t.Helper()
	p.waitSessions(t, 1)
	p.stop(t)
	rf := readRun(t, p.out)
	if len(rf.sessions) != 1 {
		t.Fatalf("%d session records, want 1: %+v", len(rf.sessions), rf.sessions)
	}
	if got, _ := rf.counters["sessions"].(float64); got != 1 {
		t.Errorf("run.json counters.sessions %v, want 1", rf.counters["sessions"])
	}
	r := rf.sessions[0]
	if r.Target != target || r.Mode != "reverse" {
		t.Errorf("target %q mode %q, want %q reverse", r.Target, r.Mode, target)
	}
	if ua := headerValue(r.Handshake.RequestHeaders, "User-Agent"); !strings.Contains(ua, "websockets/") {
		t.Errorf("User-Agent %q: not Python's websockets", ua)
	}
	return r
}

func TestIntegrationPythonReverse(t *testing.T) {
	python, version := needPythonWebsockets(t)
	t.Logf("%s, websockets %s", python, version)
	t.Run("clean-tls", func(t *testing.T) { pythonClean(t, python) })
	t.Run("upstream-drop", func(t *testing.T) { pythonUpstreamDrop(t, python) })
}

// pythonClean: wss on both legs (wstap --tls, its CA given to Python's ssl
// module), 3 echoes, 5 s of the library's pings, a close 1000 "bye" answered
// by gorilla: a clean session.
func pythonClean(t *testing.T, python string) {
	ts, upCA := tlsUpstream(t, testkit.EchoHandler())
	caDir := filepath.Join(t.TempDir(), "ca")
	upstream := "wss://" + strings.TrimPrefix(ts.URL, "https://")
	p := startWstap(t, filepath.Join(t.TempDir(), "run"), "--upstream", upstream, "--tls", "--ca-dir", caDir, "--upstream-ca", upCA)
	res := runPythonClient(t, python, "--url", "wss://"+p.addr+"/chat?room=1", "--cafile", filepath.Join(caDir, "ca.pem"),
		"--ping-interval", fmt.Sprint(pythonPingInterval.Seconds()), "--messages", "3", "--hold", "5")
	if res.Echoes != 3 || res.CloseCode != 1000 || res.Unexpected {
		t.Fatalf("the client saw %+v, want 3 echoes and close 1000", res)
	}
	// The library waits up to its close_timeout (10 s) for the TCP end after
	// the close handshake: wstap must pass the upstream's end on at once.
	if res.CloseSecs > 2 {
		t.Errorf("the client's close took %.3f s, want the close handshake and TCP end relayed at once", res.CloseSecs)
	}
	r := pythonRecord(t, p, upstream+"/chat?room=1")
	checkComplete(t, r, true)
	if r.Verdict != record.VerdictClean || r.Abnormal || r.End.First != record.SideClient || r.End.How != record.HowCloseHandshake {
		t.Errorf("verdict %s abnormal %v end %+v, want clean, a close handshake begun by the client", r.Verdict, r.Abnormal, r.End)
	}
	if r.ClientCloseCode == nil || *r.ClientCloseCode != 1000 || r.UpstreamCloseCode == nil || *r.UpstreamCloseCode != 1000 {
		t.Errorf("close codes %v %v, want 1000 both ways", r.ClientCloseCode, r.UpstreamCloseCode)
	}
	closeFrame(t, "client", r.Close.Client, 1000, "bye")
	closeFrame(t, "upstream", r.Close.Upstream, 1000, "")
	cu, uc := r.Frames.ClientToUpstream, r.Frames.UpstreamToClient
	if cu.Text != 3 || uc.Text != 3 || cu.Close != 1 || uc.Close != 1 || cu.Binary+uc.Binary+cu.Continuation+uc.Continuation != 0 {
		t.Errorf("frames %+v, want 3 texts and a close each way", r.Frames)
	}
	checkPythonPings(t, r)
}

// pythonUpstreamDrop: a plain ws upstream that ends the TCP connection 3 s
// after the upgrade without a close frame; the library reports 1006 and the
// record blames the upstream.
func pythonUpstreamDrop(t *testing.T, python string) {
	const dropAfter = 3 * time.Second
	upURL, _ := testkit.WSServer(t, false, nil, func(c *websocket.Conn) {
		go testkit.Echo(c) // reading answers the client's pings
		time.Sleep(dropAfter)
		c.UnderlyingConn().Close()
	})
	p := startWstap(t, filepath.Join(t.TempDir(), "run"), "--upstream", upURL)
	res := runPythonClient(t, python, "--url", "ws://"+p.addr+"/chat?room=2",
		"--ping-interval", fmt.Sprint(pythonPingInterval.Seconds()), "--messages", "2", "--hold", "10")
	if res.Echoes != 2 || res.CloseCode != 1006 || res.Unexpected {
		t.Fatalf("the client saw %+v, want 2 echoes and 1006", res)
	}
	r := pythonRecord(t, p, upURL+"/chat?room=2")
	checkComplete(t, r, false)
	if r.Verdict != record.VerdictAbnormalUp || !r.Abnormal || r.End.First != record.SideUpstream ||
		(r.End.How != record.HowEOF && r.End.How != record.HowReset) {
		t.Errorf("verdict %s abnormal %v end %+v, want abnormal-upstream-drop, the upstream's TCP end first", r.Verdict, r.Abnormal, r.End)
	}
	if r.ClientCloseCode == nil || *r.ClientCloseCode != 1006 || r.UpstreamCloseCode == nil || *r.UpstreamCloseCode != 1006 {
		t.Errorf("close codes %v %v, want 1006 both ways: no close frame travelled", r.ClientCloseCode, r.UpstreamCloseCode)
	}
	if r.Close.Client != nil || r.Close.Upstream != nil {
		t.Errorf("close frames %+v %+v, want none", r.Close.Client, r.Close.Upstream)
	}
	if s := r.DurationMS; !within(s, float64(dropAfter.Milliseconds()), 0.2) {
		t.Errorf("duration %.0f ms, want about the %d ms after which the upstream dropped", s, dropAfter.Milliseconds())
	}
	if cu := r.Frames.ClientToUpstream; cu.Text != 2 || r.Frames.UpstreamToClient.Text != 2 {
		t.Errorf("frames %+v, want 2 texts each way", r.Frames)
	}
	checkPythonPings(t, r)
}
