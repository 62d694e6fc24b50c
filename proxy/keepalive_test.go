package proxy

import (
	"io"
	"math"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// within reports whether got is within frac of ref.
func within(got, ref, frac float64) bool { return math.Abs(got-ref) <= frac*ref }

// p50 is the median as the record computes it (upper median).
func p50(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// pinger is one side's ping/pong behaviour: it pings every interval, answers
// the peer's pings after answerDelay, and measures what it sees itself.
type pinger struct {
	c           *websocket.Conn
	prefix      string
	answerDelay time.Duration

	mu    sync.Mutex
	sent  map[string]time.Time
	times []time.Time
	rtts  []float64
	wg    sync.WaitGroup
}

func newPinger(c *websocket.Conn, prefix string, answerDelay time.Duration) *pinger {
	p := &pinger{c: c, prefix: prefix, answerDelay: answerDelay, sent: map[string]time.Time{}}
	c.SetPingHandler(func(data string) error {
		p.wg.Add(1)
		time.AfterFunc(answerDelay, func() {
			defer p.wg.Done()
			c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		})
		return nil
	})
	c.SetPongHandler(func(data string) error {
		p.mu.Lock()
		if at, ok := p.sent[data]; ok {
			p.rtts = append(p.rtts, ms(time.Since(at)))
		}
		p.mu.Unlock()
		return nil
	})
	return p
}

// run pings every interval until stop is closed.
func (p *pinger) run(interval time.Duration, stop <-chan struct{}) {
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		case <-tk.C:
		}
		id := p.prefix + strconv.Itoa(n)
		now := time.Now()
		p.mu.Lock()
		p.sent[id] = now
		p.times = append(p.times, now)
		p.mu.Unlock()
		if err := p.c.WriteControl(websocket.PingMessage, []byte(id), now.Add(time.Second)); err != nil {
			return
		}
	}
}

func (p *pinger) intervals() []float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []float64
	for i := 1; i < len(p.times); i++ {
		out = append(out, ms(p.times[i].Sub(p.times[i-1])))
	}
	return out
}

// TestKeepaliveFigures: a client pinging every 200 ms and an upstream pinging
// every 300 ms, each answering the other's pings after a known delay (the
// client after 50 ms, the upstream after 80 ms). The record's intervals and
// pong round trips must match what the peers did and measured, within 20%.
func TestKeepaliveFigures(t *testing.T) {
	t.Parallel()
	const (
		clientEvery, upstreamEvery = 200 * time.Millisecond, 300 * time.Millisecond
		clientDelay, upstreamDelay = 50 * time.Millisecond, 80 * time.Millisecond
	)
	upPinger := make(chan *pinger, 1)
	upURL, _ := wsServer(t, false, func(c *websocket.Conn) {
		pg := newPinger(c, "u", upstreamDelay)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { defer close(done); pg.run(upstreamEvery, stop) }()
		stopped := false
		for {
			mt, m, err := c.ReadMessage()
			if err != nil {
				break
			}
			if string(m) == "stop" && !stopped {
				stopped = true
				close(stop)
				<-done
			}
			c.WriteMessage(mt, m)
		}
		if !stopped {
			close(stop)
			<-done
		}
		pg.wg.Wait()
		upPinger <- pg
	})
	p := startTestProxy(t, upURL, false, nil)
	c, _, err := p.dialer().Dial(p.url("/keepalive"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cp := newPinger(c, "c", clientDelay)
	msgs := make(chan string, 4)
	readDone := make(chan error, 1)
	go func() {
		for {
			_, m, err := c.ReadMessage()
			if err != nil {
				readDone <- err
				return
			}
			msgs <- string(m)
		}
	}()
	stop := make(chan struct{})
	pingDone := make(chan struct{})
	go func() { defer close(pingDone); cp.run(clientEvery, stop) }()

	time.Sleep(2200 * time.Millisecond)
	// Stop both pingers, then let the last answers arrive before closing.
	c.WriteMessage(websocket.TextMessage, []byte("stop"))
	select {
	case m := <-msgs:
		if m != "stop" {
			t.Fatalf("echo %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no echo of stop")
	}
	close(stop)
	<-pingDone
	time.Sleep(2 * upstreamDelay)
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	if err := <-readDone; !websocket.IsCloseError(err, 1000) {
		t.Errorf("client read: %v", err)
	}
	cp.wg.Wait()
	c.Close()
	up := <-upPinger

	r := oneRecord(t, p)
	k := r.Keepalive
	cp.mu.Lock()
	clientSent, clientRTT := len(cp.times), cp.rtts
	cp.mu.Unlock()
	upSent, upRTT := len(up.times), up.rtts
	t.Logf("client: %d pings, own intervals p50 %.1f ms, own RTT p50 %.1f ms; record: interval %+v, upstream_pong_rtt %+v",
		clientSent, p50(cp.intervals()), p50(clientRTT), k.ClientPingIntervalMS, k.UpstreamPongRTTMS)
	t.Logf("upstream: %d pings, own intervals p50 %.1f ms, own RTT p50 %.1f ms; record: interval %+v, client_pong_rtt %+v",
		upSent, p50(up.intervals()), p50(upRTT), k.UpstreamPingIntervalMS, k.ClientPongRTTMS)
	t.Logf("pong_rtt_ms %+v, unanswered %d, max_silence %.1f ms", k.PongRTTMS, k.UnansweredPings, k.MaxSilenceMS)

	if k.ClientPings != int64(clientSent) || k.UpstreamPings != int64(upSent) || clientSent < 8 || upSent < 5 {
		t.Errorf("pings: record client %d upstream %d, sent %d and %d", k.ClientPings, k.UpstreamPings, clientSent, upSent)
	}
	if k.UnansweredPings != 0 {
		t.Errorf("unanswered_pings %d, want 0", k.UnansweredPings)
	}
	check := func(name string, got, nominal, measured float64) {
		t.Helper()
		if !within(got, nominal, 0.2) || !within(got, measured, 0.2) {
			t.Errorf("%s %.1f ms: want within 20%% of %.0f ms (nominal) and of %.1f ms (measured by the peer)", name, got, nominal, measured)
		}
	}
	if k.ClientPingIntervalMS == nil || k.UpstreamPingIntervalMS == nil || k.ClientPongRTTMS == nil || k.UpstreamPongRTTMS == nil || k.PongRTTMS == nil {
		t.Fatalf("keepalive figures missing: %+v", k)
	}
	check("client_ping_interval_ms.p50", k.ClientPingIntervalMS.P50, ms(clientEvery), p50(cp.intervals()))
	check("upstream_ping_interval_ms.p50", k.UpstreamPingIntervalMS.P50, ms(upstreamEvery), p50(up.intervals()))
	// upstream_pong_rtt: the upstream answering the client's pings.
	check("upstream_pong_rtt_ms.p50", k.UpstreamPongRTTMS.P50, ms(upstreamDelay), p50(clientRTT))
	check("client_pong_rtt_ms.p50", k.ClientPongRTTMS.P50, ms(clientDelay), p50(upRTT))
	if k.PongRTTMS.P50 < ms(clientDelay)*0.8 || k.PongRTTMS.Max < ms(upstreamDelay)*0.8 || k.PongRTTMS.Max > ms(upstreamDelay)*2 {
		t.Errorf("pong_rtt_ms %+v: want p50 between the two delays and max near %v", k.PongRTTMS, upstreamDelay)
	}
	if got := r.Frames.ClientToUpstream.Ping; got != int64(clientSent) {
		t.Errorf("frames.client_to_upstream.ping %d, want %d", got, clientSent)
	}
	if got := r.Frames.UpstreamToClient.Pong; got != int64(clientSent) {
		t.Errorf("frames.upstream_to_client.pong %d, want %d", got, clientSent)
	}
}

// TestSilenceBeforeEnd: the upstream goes quiet for 1.5 s and then drops the
// TCP connection without a close frame.
func TestSilenceBeforeEnd(t *testing.T) {
	t.Parallel()
	const quiet = 1500 * time.Millisecond
	upURL, _ := wsServer(t, false, helloThen(func(c *websocket.Conn) {
		time.Sleep(quiet)
		c.NetConn().Close()
	}))
	p := startTestProxy(t, upURL, false, nil)
	c, _, err := p.dialer().Dial(p.url("/quiet"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hello(t, c)
	last := time.Now()
	_, _, err = c.ReadMessage()
	seen := time.Since(last)
	if !websocket.IsCloseError(err, websocket.CloseAbnormalClosure) {
		t.Errorf("client: %v, want 1006", err)
	}
	c.Close()
	r := oneRecord(t, p)
	k := r.Keepalive
	t.Logf("silence_before_end_ms %.1f, max_silence_ms %.1f, client_silence_before_end_ms %.1f; the client saw %.1f ms",
		k.SilenceBeforeEnd, k.MaxSilenceMS, k.ClientSilenceBeforeEndMS, ms(seen))
	if !within(k.SilenceBeforeEnd, ms(quiet), 0.2) || !within(k.SilenceBeforeEnd, ms(seen), 0.2) {
		t.Errorf("silence_before_end_ms %.1f: want within 20%% of 1500 and of %.1f (client)", k.SilenceBeforeEnd, ms(seen))
	}
	if k.MaxSilenceMS < k.SilenceBeforeEnd {
		t.Errorf("max_silence_ms %.1f < silence_before_end_ms %.1f", k.MaxSilenceMS, k.SilenceBeforeEnd)
	}
	if k.ClientSilenceBeforeEndMS < k.SilenceBeforeEnd {
		t.Errorf("client_silence_before_end_ms %.1f < silence_before_end_ms %.1f", k.ClientSilenceBeforeEndMS, k.SilenceBeforeEnd)
	}
	checkEnd(t, r, endWant{"abnormal-upstream-drop", "upstream", "eof", closeCode(1006), closeCode(1006), true})
}

// TestLateAndUnansweredPongs: the upstream pings three times; the client
// answers the first two 150 ms late (LatePong is 100 ms) and never the third.
func TestLateAndUnansweredPongs(t *testing.T) {
	t.Parallel()
	upURL, _ := wsServer(t, false, func(c *websocket.Conn) {
		for i := 0; i < 3; i++ {
			c.WriteControl(websocket.PingMessage, []byte("u"+strconv.Itoa(i)), time.Now().Add(time.Second))
			time.Sleep(200 * time.Millisecond)
		}
		// Read the pongs (unread data would turn the close into a RST).
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		c.ReadMessage()
		c.NetConn().Close()
	})
	p := startTestProxy(t, upURL, false, nil, func(c *Config) { c.LatePong = 100 * time.Millisecond })
	rc := p.rawClient(t)
	req, _ := rawUpgradeRequest(p.srv.Addr().String(), "/late")
	rc.Write([]byte(req))
	if st, _, _, err := rc.readResponse(); err != nil || st != 101 {
		t.Fatalf("upgrade: %d %v", st, err)
	}
	for i := 0; i < 3; i++ {
		b0, pl, _, err := rc.readFrame()
		if err != nil || b0 != 0x89 {
			t.Fatalf("ping %d: %#x %v", i, b0, err)
		}
		if i < 2 {
			time.Sleep(150 * time.Millisecond)
			rc.Write(rawFrame(true, 0, 10, true, pl))
		}
	}
	rc.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, rc.br)
	rc.Close()
	r := oneRecord(t, p)
	k := r.Keepalive
	t.Logf("upstream_pings %d, unanswered %d, client_pong_rtt %+v, findings %v", k.UpstreamPings, k.UnansweredPings, k.ClientPongRTTMS, r.Findings)
	if k.UpstreamPings != 3 || k.UnansweredPings != 1 {
		t.Errorf("upstream_pings %d unanswered_pings %d, want 3 and 1", k.UpstreamPings, k.UnansweredPings)
	}
	if k.ClientPongRTTMS == nil || !within(k.ClientPongRTTMS.P50, 150, 0.2) {
		t.Errorf("client_pong_rtt_ms %+v, want p50 ≈ 150", k.ClientPongRTTMS)
	}
	wantRules(t, "late", r, "late-pong", "unanswered-ping")
	checkEnd(t, r, endWant{"abnormal-upstream-drop", "upstream", "eof", closeCode(1006), closeCode(1006), true})
}
