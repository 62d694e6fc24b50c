package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/record"
	"github.com/wstap/wstap/internal/testkit"
)

// Issue 14, item 2: headless Chromium's own WebSocket through forward mode,
// with wstap's CA trusted through an NSS database made by the recipe
// "wstap ca" prints. No code of ours speaks WebSocket on the client side:
// the test drives the browser over the DevTools protocol and the page opens
// new WebSocket("wss://...") to a gorilla/websocket TLS upstream.

// chromiumWS is what the page's script saw of its WebSocket.
type chromiumWS struct {
	Code       int      `json:"code"`
	Reason     string   `json:"reason"`
	Clean      bool     `json:"clean"`
	Got        []string `json:"got"`
	Extensions string   `json:"extensions"`
	Timeout    bool     `json:"timeout"`
}

// chromiumScript opens a WebSocket to wsURL, sends msgs (a message "binary:N"
// is N binary bytes), closes with 1000 "bye" once closeAfter messages came
// back, and resolves with how the socket closed.
func chromiumScript(wsURL string, msgs []string, closeAfter int) string {
	u, _ := json.Marshal(wsURL)
	m, _ := json.Marshal(msgs)
	return fmt.Sprintf(`new Promise((resolve) => {
  const ws = new WebSocket(%s);
  ws.binaryType = "arraybuffer";
  const got = [];
  ws.onopen = () => {
    for (const m of %s) {
      ws.send(m.startsWith("binary:") ? new Uint8Array(Number(m.slice(7))).fill(7) : m);
    }
    if (%[3]d === 0) ws.close(1000, "bye");
  };
  ws.onmessage = (e) => {
    got.push(typeof e.data === "string" ? e.data : "binary:" + e.data.byteLength);
    if (got.length === %[3]d) ws.close(1000, "bye");
  };
  ws.onclose = (e) => resolve({code: e.code, reason: e.reason, clean: e.wasClean, got, extensions: ws.extensions});
  setTimeout(() => resolve({timeout: true, got}), 20000);
})`, u, m, closeAfter)
}

// chromiumSetup is a forward-mode wstap, an upstream and a Chromium trusting
// (or not) wstap's CA.
type chromiumSetup struct {
	proxy  *proxyProc
	up     *url.URL
	chrome *chromiumProc
}

// newChromiumSetup starts the upstream h over TLS, wstap in forward mode with
// its own CA dir, and Chromium with a HOME whose NSS database was made by
// the recipe of "wstap ca" when trusted.
func newChromiumSetup(t *testing.T, bin string, h http.Handler, trusted bool) *chromiumSetup {
	t.Helper()
	ts, upCA := tlsUpstream(t, h)
	caDir := filepath.Join(t.TempDir(), "ca")
	home := filepath.Join(t.TempDir(), "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if trusted {
		runCARecipe(t, caDir, home)
	}
	p := startWstap(t, filepath.Join(t.TempDir(), "run"), "--ca-dir", caDir, "--upstream-ca", upCA)
	u, _ := url.Parse(ts.URL)
	return &chromiumSetup{proxy: p, up: u, chrome: startChromium(t, bin, home, p.addr)}
}

// runCARecipe runs "wstap ca --ca-dir caDir", takes the Chromium line of the
// trust hints and runs it as printed with sh, HOME=home: the recipe a user
// copies, tested as it is.
func runCARecipe(t *testing.T, caDir, home string) {
	t.Helper()
	testkit.NeedTool(t, "certutil")
	out, err := exec.Command(testkit.BuildWstap(t), "ca", "--ca-dir", caDir).CombinedOutput()
	if err != nil {
		t.Fatalf("wstap ca: %v\n%s", err, out)
	}
	var recipe string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); strings.Contains(l, "certutil -d sql:$HOME/.pki/nssdb") {
			recipe = l
		}
	}
	if recipe == "" {
		t.Fatalf("wstap ca prints no certutil recipe for Chromium:\n%s", out)
	}
	cmd := exec.Command("sh", "-c", recipe)
	cmd.Env = append(os.Environ(), "HOME="+home)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the recipe %q failed on a fresh HOME: %v\n%s", recipe, err, b)
	}
	b, err := exec.Command("certutil", "-d", "sql:"+filepath.Join(home, ".pki", "nssdb"), "-L", "-n", "wstap").CombinedOutput()
	if err != nil || !strings.Contains(string(b), "Valid CA") {
		t.Fatalf("certutil -L -n wstap after the recipe: %v\n%s", err, b)
	}
}

// finish closes the browser, waits for n records, stops wstap with SIGTERM
// and returns the run dir's files. The browser closes first so that any
// connection of its own ends before wstap takes stock.
func (s *chromiumSetup) finish(t *testing.T, n int) runFiles {
	t.Helper()
	s.proxy.waitSessions(t, n)
	s.chrome.close(t)
	s.proxy.stop(t)
	return readRun(t, s.proxy.out)
}

// pageSessions returns the records of the page's n WebSocket sessions, all
// to target, and checks that nothing else was counted as a session.
// Chromium's own connections (its background services' CONNECTs, a
// preconnect it never used) may only be http events: a CONNECT tunnel in
// which no request was read is not a session (DESIGN.md, "Session record").
// With untrusted set, Chromium refuses wstap's leaf for its own HTTPS too
// (where the host resolves): those tunnels end in a client TLS failure,
// which wstap records as a session since it cannot know what would have
// followed; they are logged, not counted against wstap.
func pageSessions(t *testing.T, rf runFiles, n int, target string, untrusted bool) []record.Session {
	t.Helper()
	for _, e := range rf.eventsNamed(capture.EventHTTP) {
		t.Logf("http event beside the WebSocket sessions: %v %.60v → %v", e["method"], e["url"], e["status"])
	}
	others := 0
	var page []record.Session
	for _, r := range rf.sessions {
		if r.Target == target {
			page = append(page, r)
			continue
		}
		others++
		b, _ := json.Marshal(r)
		if untrusted && r.Verdict == record.VerdictTLSClient {
			t.Logf("Chromium's own TLS through the tunnel failed, recorded as a session: %s", b)
			continue
		}
		t.Errorf("a session record that is no WebSocket session of the page (a CONNECT without a request must be an http event): %s", b)
	}
	if len(page) != n {
		t.Fatalf("%d session records to %s, want the page's %d", len(page), target, n)
	}
	for _, r := range page {
		// docs/records.md: mode is absent on the record of a failed client TLS handshake.
		if want := "forward"; r.Mode != want && !(r.Mode == "" && r.Verdict == record.VerdictTLSClient) {
			t.Errorf("record %s: mode %q, want %s", r.ID, r.Mode, want)
		}
	}
	if got, _ := rf.counters["sessions"].(float64); int(got) != n+others {
		t.Errorf("run.json counters.sessions %v, want the %d records of sessions.jsonl: %v", rf.counters["sessions"], n+others, rf.counters)
	}
	return page
}

// checkChromiumHandshake: the upgrade request is Chromium's own.
func checkChromiumHandshake(t *testing.T, r record.Session) {
	t.Helper()
	if ua := headerValue(r.Handshake.RequestHeaders, "User-Agent"); !strings.Contains(ua, "Chrome/") {
		t.Errorf("User-Agent %q: not Chromium's", ua)
	}
	if ext := headerValue(r.Handshake.RequestHeaders, "Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
		t.Errorf("Sec-WebSocket-Extensions %q: Chromium offers permessage-deflate", ext)
	}
}

func TestIntegrationChromiumForward(t *testing.T) {
	bin := testkit.NeedTool(t, "chromium", "chromium-browser", "google-chrome")
	testkit.NeedTool(t, "certutil")
	// The subtests run one after the other: each starts a browser, and the
	// ping test measures intervals.
	t.Run("echo", func(t *testing.T) { chromiumEcho(t, bin) })
	t.Run("upstream-pings", func(t *testing.T) { chromiumUpstreamPings(t, bin) })
	t.Run("untrusted-ca", func(t *testing.T) { chromiumUntrusted(t, bin) })
}

// chromiumEcho: texts of 7 and 200 bytes and a 300-byte binary message both
// ways, then a close handshake begun by the page: a clean session with every
// frame counted to the byte.
func chromiumEcho(t *testing.T, bin string) {
	up := &websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	s := newChromiumSetup(t, bin, testkit.Handler(up, testkit.Echo), true)
	target := "wss://" + s.up.Host + "/echo?room=7"
	msgs := []string{"hello 1", "hello 2", strings.Repeat("x", 200), "binary:300"}
	var ws chromiumWS
	s.chrome.evaluate(t, chromiumScript(target, msgs, len(msgs)), &ws)
	if ws.Timeout || ws.Code != 1000 || !ws.Clean || strings.Join(ws.Got, ",") != strings.Join(msgs, ",") {
		t.Fatalf("the page saw %+v, want its 4 messages echoed and a clean close 1000", ws)
	}
	rf := s.finish(t, 1)
	r := pageSessions(t, rf, 1, target, false)[0]
	checkComplete(t, r, true)
	checkChromiumHandshake(t, r)
	if r.Verdict != record.VerdictClean || r.Abnormal || r.End.First != record.SideClient || r.End.How != record.HowCloseHandshake {
		t.Errorf("verdict %s abnormal %v end %+v, want clean, a close handshake begun by the client", r.Verdict, r.Abnormal, r.End)
	}
	if r.ClientCloseCode == nil || *r.ClientCloseCode != 1000 || r.UpstreamCloseCode == nil || *r.UpstreamCloseCode != 1000 {
		t.Errorf("close codes %v %v, want 1000 both ways", r.ClientCloseCode, r.UpstreamCloseCode)
	}
	closeFrame(t, "client", r.Close.Client, 1000, "bye")
	closeFrame(t, "upstream", r.Close.Upstream, 1000, "") // gorilla answers with the code alone
	// Client frames are masked (RFC 6455 5.3): 2-byte header, 2 more for a
	// 126..65535-byte payload (5.2), a 4-byte key. Close "bye": code + 3 bytes.
	wantCU := record.DirFrames{Frames: 5, Text: 3, Binary: 1, Close: 1,
		Bytes: (6 + 7) + (6 + 7) + (8 + 200) + (8 + 300) + (6 + 5)}
	wantUC := record.DirFrames{Frames: 5, Text: 3, Binary: 1, Close: 1,
		Bytes: (2 + 7) + (2 + 7) + (4 + 200) + (4 + 300) + (2 + 2)}
	if r.Frames.ClientToUpstream != wantCU || r.Frames.UpstreamToClient != wantUC {
		t.Errorf("frames %+v, want client→upstream %+v upstream→client %+v", r.Frames, wantCU, wantUC)
	}
	if r.TLS.Client != nil && r.TLS.Upstream != nil {
		t.Logf("Chromium session: client TLS %s %s ALPN %q end %s, upstream TLS %s %s end %s, handshake %.1f ms",
			r.TLS.Client.Version, r.TLS.Client.Cipher, r.TLS.Client.ALPN, r.TLS.Client.End,
			r.TLS.Upstream.Version, r.TLS.Upstream.Cipher, r.TLS.Upstream.End, r.Handshake.LatencyMS)
	}
}

// chromiumUpstreamPings: the upstream pings the page 6 times 250 ms apart,
// then sends "done"; Chromium answers each ping with a pong by itself, and
// the record times those pongs.
func chromiumUpstreamPings(t *testing.T, bin string) {
	const pings, every = 6, 250 * time.Millisecond
	up := &websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	s := newChromiumSetup(t, bin, testkit.Handler(up, func(c *websocket.Conn) {
		read := make(chan struct{})
		go func() { // gorilla handles pongs and the close frame while reading
			defer close(read)
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
		for range pings {
			if c.WriteControl(websocket.PingMessage, []byte("wstap"), time.Now().Add(5*time.Second)) != nil {
				return
			}
			time.Sleep(every)
		}
		c.WriteMessage(websocket.TextMessage, []byte("done"))
		<-read
	}), true)
	target := "wss://" + s.up.Host + "/pings"
	var ws chromiumWS
	s.chrome.evaluate(t, chromiumScript(target, nil, 1), &ws)
	if ws.Timeout || ws.Code != 1000 || !ws.Clean || len(ws.Got) != 1 || ws.Got[0] != "done" {
		t.Fatalf("the page saw %+v, want \"done\" and a clean close 1000", ws)
	}
	rf := s.finish(t, 1)
	r := pageSessions(t, rf, 1, target, false)[0]
	checkComplete(t, r, true)
	checkChromiumHandshake(t, r)
	if r.Verdict != record.VerdictClean || r.End.First != record.SideClient {
		t.Errorf("verdict %s end %+v, want clean, begun by the client", r.Verdict, r.End)
	}
	cu, uc := r.Frames.ClientToUpstream, r.Frames.UpstreamToClient
	if uc.Ping != pings || cu.Pong != pings || cu.Ping != 0 || uc.Text != 1 || cu.Close != 1 || uc.Close != 1 {
		t.Errorf("frames %+v, want %d pings down, %d pongs up, \"done\" and a close each way", r.Frames, pings, pings)
	}
	k := r.Keepalive
	if k.UpstreamPings != pings || k.ClientPings != 0 || k.UnansweredPings != 0 || k.UnsolicitedPongs != 0 {
		t.Errorf("keepalive %+v, want %d upstream pings, all answered", k, pings)
	}
	if k.ClientPongRTTMS == nil || k.ClientPongRTTMS.P50 <= 0 || k.ClientPongRTTMS.Max > 1000 {
		t.Fatalf("client pong RTT %+v, want Chromium's pongs timed, each under 1 s", k.ClientPongRTTMS)
	}
	if iv := k.UpstreamPingIntervalMS; iv == nil || !within(iv.P50, float64(every.Milliseconds()), 0.2) {
		t.Errorf("upstream ping interval %+v ms, want p50 within 20%% of %d", iv, every.Milliseconds())
	}
	t.Logf("Chromium answered %d pings: pong RTT p50 %.3f ms max %.3f ms; upstream ping interval %+v ms",
		cu.Pong, k.ClientPongRTTMS.P50, k.ClientPongRTTMS.Max, *k.UpstreamPingIntervalMS)
}

// chromiumUntrusted: without the NSS database Chromium refuses wstap's leaf;
// the page sees 1006 and wstap records a failed client TLS handshake. This
// is the control that shows the recipe is what makes the other cases work.
func chromiumUntrusted(t *testing.T, bin string) {
	up := &websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	s := newChromiumSetup(t, bin, testkit.Handler(up, testkit.Echo), false)
	target := "wss://" + s.up.Host + "/echo"
	var ws chromiumWS
	s.chrome.evaluate(t, chromiumScript(target, []string{"hello"}, 1), &ws)
	if ws.Timeout || ws.Code != 1006 || ws.Clean || len(ws.Got) != 0 {
		t.Fatalf("the page saw %+v, want 1006 without the CA trusted", ws)
	}
	rf := s.finish(t, 1)
	// The target of a session that ended in its TLS handshake has no path:
	// the request was never read.
	r := pageSessions(t, rf, 1, "wss://"+s.up.Host+"/", true)[0]
	if r.Verdict != record.VerdictTLSClient || r.End.How != record.HowTLSError || r.End.First != record.SideClient ||
		r.TLS.Client == nil || r.TLS.Client.Error == "" || r.TLS.Client.Alert == "" {
		b, _ := json.Marshal(r)
		t.Fatalf("record %s, want tls-failed-client with the alert Chromium sent", b)
	}
	if r.ClientCloseCode != nil || r.UpstreamCloseCode != nil || r.Abnormal {
		t.Errorf("a session without a 101 has close codes %v %v abnormal %v", r.ClientCloseCode, r.UpstreamCloseCode, r.Abnormal)
	}
	t.Logf("Chromium without the CA: alert %q, error %q", r.TLS.Client.Alert, r.TLS.Client.Error)
}
