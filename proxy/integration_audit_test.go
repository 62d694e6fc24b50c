package proxy

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/gorilla/websocket"
	"github.com/wstap/wstap/capture/record"
	"github.com/wstap/wstap/capture/report"
)

// Live tests of issue 4 (handshake audit and keep-alive ledger): real
// clients and servers through the real proxy; the record names the fault.

// findingOf returns the record's finding with rule, or nil.
func findingOf(r *record.Session, rule string) *record.Finding {
	for i := range r.Findings {
		if r.Findings[i].Rule == rule {
			return &r.Findings[i]
		}
	}
	return nil
}

// TestIntegrationSubprotocolNotOffered: a server selects a subprotocol the
// client did not offer. coder/websocket fails the connection, as RFC 6455
// §4.1 wants; the record still has the 101 and subprotocol-not-offered.
func TestIntegrationSubprotocolNotOffered(t *testing.T) {
	t.Parallel()
	up := rawServer(t, func(c *rawConn) {
		_, hdr, err := c.readRequest()
		if err != nil {
			return
		}
		resp := strings.TrimSuffix(response101(hdr.Get("Sec-WebSocket-Key")), "\r\n") + "Sec-WebSocket-Protocol: v9.evil\r\n\r\n"
		c.Write([]byte(resp))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		c.br.WriteTo(nopWriter{}) // until the client gives up
	})
	p := startTestProxy(t, "ws://"+up, false, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := cws.Dial(ctx, p.url("/chat"), &cws.DialOptions{Subprotocols: []string{"chat.v2"}})
	if err == nil {
		c.CloseNow()
		t.Fatal("coder/websocket accepted a subprotocol it did not offer")
	}
	t.Logf("client: %v", err)
	p.waitRecords(1)
	r := p.records()[0]
	if r.Handshake.Status != 101 || r.Handshake.Subprotocol != "v9.evil" {
		t.Errorf("handshake status %d subprotocol %q", r.Handshake.Status, r.Handshake.Subprotocol)
	}
	f := findingOf(&r, "subprotocol-not-offered")
	if f == nil || f.Severity != record.SevError || !strings.Contains(f.Detail, `"v9.evil"`) || !strings.Contains(f.Detail, "chat.v2") {
		t.Fatalf("finding %+v among %+v, want subprotocol-not-offered quoting both values", f, r.Findings)
	}
	if r.Verdict != record.VerdictAbnormalClient || r.End.First != record.SideClient {
		t.Errorf("verdict %s end %+v: the client failed the connection", r.Verdict, r.End)
	}
	t.Logf("finding: %s (session ended after %.0f ms: %s by the %s)", f.Detail, r.DurationMS, r.End.How, r.End.First)
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// TestIntegrationTokenExpiring: a session whose bearer JWT expires while it
// is open gets token-expiring, with the seconds between exp and the end.
func TestIntegrationTokenExpiring(t *testing.T) {
	t.Parallel()
	upURL, _ := wsServer(t, false, echo)
	p := startTestProxy(t, upURL, false, nil)
	exp := time.Now().Add(1500 * time.Millisecond).Truncate(time.Second)
	if time.Until(exp) < 500*time.Millisecond {
		exp = exp.Add(time.Second)
	}
	token := jwt(fmt.Sprintf(`{"sub":"load-7","exp":%d}`, exp.Unix()))
	valid := jwt(fmt.Sprintf(`{"sub":"load-8","exp":%d}`, exp.Add(time.Hour).Unix()))
	var wg sync.WaitGroup
	for _, tok := range []string{token, valid} {
		c, _, err := p.dialer().Dial(p.url("/chat"), http.Header{"Authorization": {"Bearer " + tok}})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			// Hold the session 400 ms past exp, chatting, then close cleanly.
			for time.Now().Before(exp.Add(400 * time.Millisecond)) {
				c.WriteMessage(websocket.TextMessage, []byte("hi"))
				if _, _, err := c.ReadMessage(); err != nil {
					t.Errorf("echo: %v", err)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
			c.ReadMessage()
		}()
	}
	wg.Wait()
	p.waitRecords(2)
	recs := p.records()
	var expiring, fine *record.Session
	for i := range recs {
		if findingOf(&recs[i], "token-expiring") != nil {
			expiring = &recs[i]
		} else {
			fine = &recs[i]
		}
	}
	if expiring == nil || fine == nil {
		t.Fatalf("want one record with token-expiring and one without: %+v", recs)
	}
	f := findingOf(expiring, "token-expiring")
	var before float64
	if _, err := fmt.Sscanf(f.Detail, "token expired %g s before the end", &before); err != nil ||
		math.Abs(before-expiring.End.At.Sub(exp).Seconds()) > 0.1 {
		t.Errorf("detail %q: want the %.1f s from exp to the session's end", f.Detail, expiring.End.At.Sub(exp).Seconds())
	}
	if strings.Contains(f.Detail, token) || !strings.Contains(f.Detail, "bearer token in Authorization") {
		t.Errorf("detail %q: want the token named by its digest only", f.Detail)
	}
	if expiring.Verdict != record.VerdictClean {
		t.Errorf("verdict %s", expiring.Verdict)
	}
	t.Logf("finding: %s", f.Detail)
}

// TestIntegrationLatePong: a gorilla client answers the upstream's pings 3 s
// late with --late-pong 1s: late-pong, and the client's pong RTT says 3 s.
// A ping answered at once beside it is not late.
func TestIntegrationLatePong(t *testing.T) {
	t.Parallel()
	const late = 3 * time.Second
	upURL, _ := wsServer(t, false, func(c *websocket.Conn) {
		now := time.Now().Add(time.Second)
		c.WriteControl(websocket.PingMessage, []byte("quick"), now)
		c.WriteControl(websocket.PingMessage, []byte("slow"), now)
		echo(c)
	})
	p := startTestProxy(t, upURL, false, nil, func(c *Config) { c.LatePong = time.Second })
	c, _, err := p.dialer().Dial(p.url("/chat"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// answered carries how long the client held each ping: from its handler
	// being called to its pong written.
	answered := make(chan time.Duration, 2)
	var slowHeld time.Duration
	c.SetPingHandler(func(data string) error {
		called := time.Now()
		// The JMeter plugin reads the socket only while a sampler runs: the
		// "slow" ping waits for the next read, 3 s later.
		if data == "slow" {
			time.Sleep(late)
		}
		err := c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		if data == "slow" {
			slowHeld = time.Since(called)
		}
		answered <- time.Since(called)
		return err
	})
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	<-answered
	<-answered
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
	time.Sleep(50 * time.Millisecond) // the close frame back
	c.Close()
	p.waitRecords(1)
	r := p.records()[0]
	f := findingOf(&r, "late-pong")
	if f == nil || f.Severity != record.SevWarn || !strings.Contains(f.Detail, "answered 1 upstream ping(s) later than 1s") {
		t.Fatalf("finding %+v among %+v, want late-pong for 1 ping", f, r.Findings)
	}
	k := r.Keepalive
	// The slow round trip holds the client's hold (wstap read the ping
	// before the client did and the pong after it was written): within 10%
	// of the hold and, against the nominal delay, at least it.
	if k.UpstreamPings != 2 || k.UnansweredPings != 0 || k.ClientPongRTTMS == nil ||
		!within(k.ClientPongRTTMS.Max, ms(slowHeld), 0.1) || k.ClientPongRTTMS.Max < ms(late) {
		t.Errorf("keepalive %+v, client pong RTT %+v: want the slow pong at least %v and within 10%% of the client's %v", k, k.ClientPongRTTMS, late, slowHeld)
	}
	t.Logf("finding: %s; client pong RTT %+v ms", f.Detail, *k.ClientPongRTTMS)
}

// TestIntegrationHeartbeatIntervals: with --heartbeat '"message":"ping"', a
// client sending {"message":"ping"} every 200 ms gets client heartbeats and
// an interval p50 within 20% of the one the client measured.
func TestIntegrationHeartbeatIntervals(t *testing.T) {
	t.Parallel()
	const every, n = 200 * time.Millisecond, 12
	upURL, _ := wsServer(t, false, func(c *websocket.Conn) {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
			if err := c.WriteMessage(websocket.TextMessage, []byte(`{"message":"pong"}`)); err != nil {
				return
			}
		}
	})
	p := startTestProxy(t, upURL, false, nil, func(c *Config) {
		c.Heartbeats = []*regexp.Regexp{regexp.MustCompile(`"message":"ping"`)}
	})
	c, _, err := p.dialer().Dial(p.url("/chat"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var sent []time.Time
	tk := time.NewTicker(every)
	for i := 0; i < n; i++ {
		<-tk.C
		sent = append(sent, time.Now())
		c.WriteMessage(websocket.TextMessage, []byte(`{"message":"ping","seq":`+fmt.Sprint(i)+`}`))
		if _, _, err := c.ReadMessage(); err != nil {
			t.Fatal(err)
		}
		if i == n/2 {
			c.WriteMessage(websocket.TextMessage, []byte(`{"message":"hello"}`)) // not a heartbeat
			c.ReadMessage()
		}
	}
	tk.Stop()
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	c.ReadMessage()
	c.Close()
	var gaps []float64
	for i := 1; i < len(sent); i++ {
		gaps = append(gaps, ms(sent[i].Sub(sent[i-1])))
	}
	truth := p50(gaps)
	p.waitRecords(1)
	k := p.records()[0].Keepalive
	if k.ClientHeartbeats != n || k.UpstreamHeartbeats != 0 || k.ClientHeartbeatIntervalMS == nil {
		t.Fatalf("keepalive %+v: want %d client heartbeats", k, n)
	}
	iv := k.ClientHeartbeatIntervalMS
	if !within(iv.P50, truth, 0.2) {
		t.Errorf("heartbeat interval %+v ms, client measured p50 %.1f ms (gaps %v): want within 20%%", *iv, truth, gaps)
	}
	t.Logf("heartbeats %d, interval %+v ms, client measured p50 %.1f ms", k.ClientHeartbeats, *iv, truth)
}

// TestIntegrationIdleDropInference: 50 sessions through wstap to a server
// that drops the TCP connection (no close frame) after 2 s of client
// silence; the clients fall silent after 0 to 7 messages 100 ms apart. The
// run's inference names an idle timeout within 10% of the silence the server
// measured before its drops, and of 2 s.
func TestIntegrationIdleDropInference(t *testing.T) {
	t.Parallel()
	const idle, sessions = 2 * time.Second, 50
	serverSilence := make(chan float64, sessions) // ms from the server's last read to its drop
	upURL, _ := wsServer(t, false, func(c *websocket.Conn) {
		for last := time.Now(); ; last = time.Now() {
			c.SetReadDeadline(time.Now().Add(idle))
			if _, _, err := c.ReadMessage(); err != nil {
				serverSilence <- ms(time.Since(last))
				c.NetConn().Close() // no close frame: the client will log 1006
				return
			}
		}
	})
	p := startTestProxy(t, upURL, false, nil)
	var wg sync.WaitGroup
	codes := make(chan int, sessions)
	for i := 0; i < sessions; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := p.dialer().Dial(p.url(fmt.Sprintf("/chat/%d", i)), nil)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for k := 0; k < i%8; k++ {
				time.Sleep(100 * time.Millisecond)
				c.WriteMessage(websocket.TextMessage, []byte("typing"))
			}
			_, _, err = c.ReadMessage()
			code := 0
			if ce, ok := err.(*websocket.CloseError); ok {
				code = ce.Code
			}
			codes <- code
		}()
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != websocket.CloseAbnormalClosure {
			t.Errorf("client saw close code %d, want 1006", code)
		}
	}
	p.waitRecords(sessions)
	recs := p.records()
	drops := 0
	for _, r := range recs {
		if r.Verdict == record.VerdictAbnormalUp && r.Abnormal {
			drops++
		}
	}
	if drops != sessions {
		t.Errorf("%d abnormal upstream drops of %d sessions", drops, sessions)
	}
	var silences []float64
	for _, r := range recs {
		silences = append(silences, r.Keepalive.SilenceBeforeEnd)
	}
	sort.Float64s(silences)
	t.Logf("silence before the drop (ms): %v", silences)
	run, err := report.LoadRun(p.dir)
	if err != nil {
		t.Fatal(err)
	}
	var idleCause *report.Cause
	causes := report.Summarize(run).Causes
	for _, c := range causes {
		t.Logf("cause %s: %d sessions: %s", c.Cause, c.Sessions, c.Evidence)
		switch c.Cause {
		case report.CauseIdle:
			idleCause = c
		case report.CauseLifetime:
			t.Errorf("the idle timeout also reads as a session lifetime: %q", c.Evidence)
		}
	}
	if idleCause == nil {
		t.Fatalf("no idle-timeout cause among %d causes", len(causes))
	}
	var measured []float64
	for len(measured) < sessions {
		measured = append(measured, <-serverSilence)
	}
	// Against what the server measured, within 10%; against the nominal
	// timeout, one-sided: the server drops no earlier than idle after the
	// last message wstap relayed to it, and well before a second timeout.
	est := idleCause.Seconds * 1000
	if !within(est, p50(measured), 0.1) {
		t.Errorf("idle timeout %.0f ms: want within 10%% of %.0f ms, the server's median silence before its drops", est, p50(measured))
	}
	if est < 0.9*ms(idle) || est >= 1.5*ms(idle) {
		t.Errorf("idle timeout %.0f ms: want at least 0.9 × %v and below 1.5 × %v", est, idle, idle)
	}
	// On a loaded machine some drops come late; the cause must still hold
	// most of them.
	if idleCause.Sessions <= sessions/2 {
		t.Errorf("the idle timeout holds %d of %d drops, want most", idleCause.Sessions, sessions)
	}
	if !regexp.MustCompile(`an idle timeout of 2(\.[0-9])? s$`).MatchString(idleCause.Evidence) {
		t.Errorf("evidence %q", idleCause.Evidence)
	}
}
