package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wstap/wstap/capture/record"
	"github.com/wstap/wstap/internal/testkit"
)

// The record fields the causes analysis reads (docs/records.md, "Identity and
// timing" and "keepalive"), each against real gorilla/websocket peers.

// waitActive waits until the proxy counts n upgraded sessions open: a client's
// Dial returns when it has read the 101, a moment before the proxy counts it.
func waitActive(t *testing.T, p *testProxy, n int64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); p.srv.active.Load() != n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions open, want %d", p.srv.active.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// closeClean ends a gorilla session with a close handshake.
func closeClean(c *websocket.Conn) {
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			break
		}
	}
	c.Close()
}

// byTarget indexes records by the path and query of their target.
func byTarget(recs []record.Session) map[string]*record.Session {
	m := map[string]*record.Session{}
	for i := range recs {
		r := &recs[i]
		m[r.Target[strings.Index(r.Target[len("ws://"):], "/")+len("ws://"):]] = r
	}
	return m
}

// TestConcurrentAtOpen: five sessions opened one after another see 1..5 open
// at their 101; after the second and fourth end, the next two see 4 and 5.
func TestConcurrentAtOpen(t *testing.T) {
	upURL, _ := wsServer(t, false, echo)
	p := startTestProxy(t, upURL, false, nil)
	conns := map[string]*websocket.Conn{}
	open := func(path string, want int64) {
		c, _, err := p.dialer().Dial(p.url(path), nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		conns[path] = c
		waitActive(t, p, want)
	}
	for i, path := range []string{"/s/0", "/s/1", "/s/2", "/s/3", "/s/4"} {
		open(path, int64(i+1))
	}
	closeClean(conns["/s/1"])
	closeClean(conns["/s/3"])
	p.waitRecords(2)
	open("/s/5", 4)
	open("/s/6", 5)
	for _, path := range []string{"/s/0", "/s/2", "/s/4", "/s/5", "/s/6"} {
		closeClean(conns[path])
	}
	p.waitRecords(7)
	recs := byTarget(p.records())
	want := map[string]int{"/s/0": 1, "/s/1": 2, "/s/2": 3, "/s/3": 4, "/s/4": 5, "/s/5": 4, "/s/6": 5}
	for path, n := range want {
		r := recs[path]
		if r == nil {
			t.Fatalf("no record for %s", path)
		}
		t.Logf("%s: concurrent_at_open %d, concurrent_at_end %d", path, r.ConcurrentAtOpen, r.ConcurrentAtEnd)
		if r.ConcurrentAtOpen != n {
			t.Errorf("%s: concurrent_at_open %d, want %d", path, r.ConcurrentAtOpen, n)
		}
	}
}

// credID is the id docs/records.md defines: "sha256:" + 8 hex of the value.
func credID(v string) string {
	sum := sha256.Sum256([]byte(v))
	return "sha256:" + hex.EncodeToString(sum[:])[:8]
}

// TestCredential: the id of the Authorization value, else of the first
// token-like query value, else of the Cookie header; null without any; and
// the sessions with that credential open at each one's 101.
func TestCredential(t *testing.T) {
	upURL, _ := wsServer(t, false, echo)
	p := startTestProxy(t, upURL, false, nil)
	steps := []struct {
		path, auth, cookie string
		id                 string // "" for null
		credOpen, allOpen  int
	}{
		{"/a1", "Bearer A", "", credID("Bearer A"), 1, 1},
		{"/a2", "Bearer A", "", credID("Bearer A"), 2, 2},
		{"/b", "Bearer B", "", credID("Bearer B"), 1, 3},
		{"/q1?room=7&access_token=X", "", "", credID("X"), 1, 4},
		{"/q2?token=X&key=Y", "", "", credID("X"), 2, 5},
		{"/c", "", "sid=abc", credID("sid=abc"), 1, 6},
		{"/n?room=7", "", "", "", 0, 7},
		{"/aq?token=X", "Bearer A", "sid=abc", credID("Bearer A"), 3, 8},
	}
	conns := map[string]*websocket.Conn{}
	for i, s := range steps {
		h := http.Header{}
		if s.auth != "" {
			h.Set("Authorization", s.auth)
		}
		if s.cookie != "" {
			h.Set("Cookie", s.cookie)
		}
		c, _, err := p.dialer().Dial(p.url(s.path), h)
		if err != nil {
			t.Fatalf("%s: %v", s.path, err)
		}
		conns[s.path] = c
		waitActive(t, p, int64(i+1))
	}
	// One of A's sessions ends; the next one of A sees 3 open, itself included.
	closeClean(conns["/a1"])
	p.waitRecords(1)
	c, _, err := p.dialer().Dial(p.url("/a3"), http.Header{"Authorization": {"Bearer A"}})
	if err != nil {
		t.Fatal(err)
	}
	conns["/a3"] = c
	waitActive(t, p, int64(len(steps)))
	steps = append(steps, struct {
		path, auth, cookie string
		id                 string
		credOpen, allOpen  int
	}{"/a3", "Bearer A", "", credID("Bearer A"), 3, 8})
	for path, c := range conns {
		if path != "/a1" {
			closeClean(c)
		}
	}
	p.waitRecords(int64(len(steps)))
	recs := byTarget(p.records())
	for _, s := range steps {
		key := s.path
		if strings.Contains(key, "token=") {
			key = strings.NewReplacer("=X", "=[redacted]", "=Y", "=[redacted]").Replace(key)
		}
		r := recs[key]
		if r == nil {
			t.Fatalf("no record for %s (have %v)", key, keys(recs))
		}
		got := "null"
		if r.Credential != nil {
			got = *r.Credential
		}
		want := s.id
		if want == "" {
			want = "null"
		}
		t.Logf("%s: credential %s, credential_concurrent_at_open %d, concurrent_at_open %d", s.path, got, r.CredentialConcurrentAtOpen, r.ConcurrentAtOpen)
		if got != want || r.CredentialConcurrentAtOpen != s.credOpen || r.ConcurrentAtOpen != s.allOpen {
			t.Errorf("%s: credential %s, credential_concurrent_at_open %d, concurrent_at_open %d; want %s, %d, %d",
				s.path, got, r.CredentialConcurrentAtOpen, r.ConcurrentAtOpen, want, s.credOpen, s.allOpen)
		}
	}
	if credID("Bearer A") == credID("Bearer B") {
		t.Fatal("two credentials share an id")
	}
	p.srv.creds.mu.Lock()
	defer p.srv.creds.mu.Unlock()
	if n := len(p.srv.creds.open); n != 0 {
		t.Errorf("%d credentials still counted open after every session ended", n)
	}
}

func keys(m map[string]*record.Session) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestRefusedCarriesConcurrency: a platform that answers 503 on /full: the
// refused request's record carries the sessions open when the 503 came (not
// itself), in all and with its credential.
func TestRefusedCarriesConcurrency(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/full", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too many sessions", http.StatusServiceUnavailable)
	})
	mux.Handle("/", testkit.Handler(nil, echo))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	p := startTestProxy(t, "ws"+strings.TrimPrefix(ts.URL, "http"), false, nil)
	var conns []*websocket.Conn
	for i, auth := range []string{"Bearer A", "Bearer A", "Bearer B"} {
		c, _, err := p.dialer().Dial(p.url("/ok"), http.Header{"Authorization": {auth}})
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		waitActive(t, p, int64(i+1))
	}
	_, resp, err := p.dialer().Dial(p.url("/full"), http.Header{"Authorization": {"Bearer A"}})
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("dial /full: %v %v, want a 503", resp, err)
	}
	for _, c := range conns {
		closeClean(c)
	}
	p.waitRecords(4)
	r := byTarget(p.records())["/full"]
	if r == nil {
		t.Fatal("no record of the refused request")
	}
	t.Logf("503: status %d concurrent_at_open %d credential_concurrent_at_open %d", r.Handshake.Status, r.ConcurrentAtOpen, r.CredentialConcurrentAtOpen)
	if r.Handshake.Status != 503 || r.ConcurrentAtOpen != 3 || r.CredentialConcurrentAtOpen != 2 ||
		r.Credential == nil || *r.Credential != credID("Bearer A") {
		t.Errorf("503 record: status %d, concurrent_at_open %d, credential_concurrent_at_open %d, credential %v; want 503, 3, 2, %s",
			r.Handshake.Status, r.ConcurrentAtOpen, r.CredentialConcurrentAtOpen, r.Credential, credID("Bearer A"))
	}
}

// pingingServer is an upstream that pings every interval from its 101 and
// reads (so pongs are processed) until the connection ends; with dropAfter
// it closes the TCP connection without a close frame dropAfter after
// started is closed.
func pingingServer(t *testing.T, interval time.Duration, started <-chan struct{}, dropAfter time.Duration) string {
	url, _ := wsServer(t, false, func(c *websocket.Conn) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
		tk := time.NewTicker(interval)
		defer tk.Stop()
		var drop <-chan time.Time
		c.WriteControl(websocket.PingMessage, []byte("p0"), time.Now().Add(time.Second))
		for n := 1; ; n++ {
			select {
			case <-done:
				return
			case <-started:
				started = nil
				if dropAfter > 0 {
					drop = time.After(dropAfter)
				}
			case <-drop:
				c.NetConn().Close()
				<-done
				return
			case <-tk.C:
				c.WriteControl(websocket.PingMessage, []byte("p"+string(rune('0'+n%10))), time.Now().Add(time.Second))
			}
		}
	})
	return url
}

// TestClientMaxSilence: a client that sends a message, pauses, sends another
// and closes, answering the upstream's pings all along: its longest silence
// is the pause (its pongs do not end it), while max_silence_ms, which pongs
// and pings end, stays near the ping interval.
func TestClientMaxSilence(t *testing.T) {
	const pause, every = 800 * time.Millisecond, 100 * time.Millisecond
	p := startTestProxy(t, pingingServer(t, every, nil, 0), false, nil)
	c, _, err := p.dialer().Dial(p.url("/quiet"), nil)
	if err != nil {
		t.Fatal(err)
	}
	readDone := make(chan struct{})
	go func() { // gorilla answers pings while reading
		defer close(readDone)
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	c.WriteMessage(websocket.TextMessage, []byte("a"))
	time.Sleep(pause)
	c.WriteMessage(websocket.TextMessage, []byte("b"))
	time.Sleep(50 * time.Millisecond)
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	<-readDone
	c.Close()
	p.waitRecords(1)
	r := p.records()[0]
	k := r.Keepalive
	t.Logf("client_max_silence_ms %.1f (pause %v), max_silence_ms %.1f, client pongs %d, duration %.1f ms",
		k.ClientMaxSilenceMS, pause, k.MaxSilenceMS, r.Frames.ClientToUpstream.Pong, r.DurationMS)
	if r.Frames.ClientToUpstream.Pong < 5 {
		t.Fatalf("the client sent %d pongs during the pause, want several", r.Frames.ClientToUpstream.Pong)
	}
	// One-sided: the proxy reads the two messages a scheduling delay after
	// the client wrote them; 10% of the pause is room for that delay.
	if k.ClientMaxSilenceMS < 0.9*ms(pause) || k.ClientMaxSilenceMS > r.DurationMS {
		t.Errorf("client_max_silence_ms %.1f, want ≥ %.0f (the pause) and ≤ the duration %.1f", k.ClientMaxSilenceMS, 0.9*ms(pause), r.DurationMS)
	}
	if k.MaxSilenceMS >= ms(pause)/2 {
		t.Errorf("max_silence_ms %.1f: pings and pongs every %v should keep it far below the pause", k.MaxSilenceMS, every)
	}
}

// TestUnansweredPingBeforeEnd: the upstream pings every 200 ms and drops
// the TCP connection D after the client received its first ping. A client
// that never answers gets the time from that first ping to the drop: at
// least D, less than D and one interval. A client that answers gets null.
func TestUnansweredPingBeforeEnd(t *testing.T) {
	const every, d = 200 * time.Millisecond, 700 * time.Millisecond
	for _, answers := range []bool{false, true} {
		name := "silent"
		if answers {
			name = "answers"
		}
		t.Run(name, func(t *testing.T) {
			started := make(chan struct{})
			p := startTestProxy(t, pingingServer(t, every, started, d), false, nil)
			c, _, err := p.dialer().Dial(p.url("/"+name), nil)
			if err != nil {
				t.Fatal(err)
			}
			first := true
			c.SetPingHandler(func(data string) error {
				if first {
					first = false
					close(started) // the proxy has read and relayed the first ping
				}
				if answers {
					return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
				}
				return nil
			})
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					break
				}
			}
			c.Close()
			p.waitRecords(1)
			r := p.records()[0]
			v := r.Keepalive.UnansweredPingBeforeEndMS
			if r.Verdict != record.VerdictAbnormalUp {
				t.Errorf("verdict %s, want abnormal-upstream-drop", r.Verdict)
			}
			if answers {
				if v != nil {
					t.Errorf("unanswered_ping_before_end_ms %.1f for a client that answered every ping, want null", *v)
				}
				t.Logf("answering client: unanswered_ping_before_end_ms null, upstream pings %d", r.Keepalive.UpstreamPings)
				return
			}
			if v == nil {
				t.Fatal("unanswered_ping_before_end_ms null for a client that never answered")
			}
			t.Logf("silent client: unanswered_ping_before_end_ms %.1f (drop %v after the first ping, pings every %v), upstream pings %d",
				*v, d, every, r.Keepalive.UpstreamPings)
			if *v < ms(d) || *v >= ms(d+every) {
				t.Errorf("unanswered_ping_before_end_ms %.1f, want in [%v, %v)", *v, d, d+every)
			}
		})
	}
}

// TestConnectWithoutRequest: a CONNECT to a closed port gets a 502 and a
// CONNECT whose client sends nothing before closing gets its 200; neither
// is a session: each is an http event with method CONNECT, its status, its
// reason and its target.
func TestConnectWithoutRequest(t *testing.T) {
	p := startForwardProxy(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	open := testkit.Listen(t, "127.0.0.1", func(c net.Conn) { io.Copy(io.Discard, c) })
	for _, c := range []struct {
		target string
		status int
	}{{closed, 502}, {open, 200}} {
		conn := rawDial(t, p.srv.Addr().String())
		fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", c.target, c.target)
		status, _, _, err := conn.readResponse()
		if err != nil || status != c.status {
			t.Fatalf("CONNECT %s: status %d %v, want %d", c.target, status, err, c.status)
		}
		conn.Close()
	}
	// Both answers are out; wait for the second tunnel's end to be logged.
	for deadline := time.Now().Add(5 * time.Second); p.rec.Counters().HTTPRequests < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("%d http events, want 2", p.rec.Counters().HTTPRequests)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if recs := p.records(); len(recs) != 0 {
		t.Fatalf("%d session records, want none: %+v", len(recs), recs)
	}
	var got []jsonEvent
	for _, e := range p.events() {
		if e["event"] == "http" {
			got = append(got, e)
		}
	}
	want := map[string]float64{closed: 502, open: 200}
	if len(got) != 2 {
		t.Fatalf("http events %v, want 2", got)
	}
	for _, e := range got {
		target, _ := e["target"].(string)
		reason, _ := e["reason"].(string)
		t.Logf("http event: method %v status %v target %v reason %q", e["method"], e["status"], target, reason)
		if e["method"] != "CONNECT" || e["status"] != want[target] || reason == "" || e["session"] != nil {
			t.Errorf("http event %v: want method CONNECT, status %v, a reason, no session", e, want[target])
		}
	}
}
