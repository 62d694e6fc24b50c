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
	// check holds a recorded figure to what the peer measured itself (within
	// 20%), and to the nominal value only by generous bounds a loaded machine
	// cannot break: at least lo, below hi.
	check := func(name string, got, measured, lo, hi float64) {
		t.Helper()
		if !within(got, measured, 0.2) {
			t.Errorf("%s %.1f ms: want within 20%% of %.1f ms (measured by the peer)", name, got, measured)
		}
		if got < lo || got >= hi {
			t.Errorf("%s %.1f ms: want at least %.0f ms and below %.0f ms", name, got, lo, hi)
		}
	}
	if k.ClientPingIntervalMS == nil || k.UpstreamPingIntervalMS == nil || k.ClientPongRTTMS == nil || k.UpstreamPongRTTMS == nil || k.PongRTTMS == nil {
		t.Fatalf("keepalive figures missing: %+v", k)
	}
	// A ticker's late tick shortens the next gap, so the median gap is bounded
	// by half an interval below and by the gap of a skipped tick above.
	check("client_ping_interval_ms.p50", k.ClientPingIntervalMS.P50, p50(cp.intervals()), ms(clientEvery)/2, ms(clientEvery)*3/2)
	check("upstream_ping_interval_ms.p50", k.UpstreamPingIntervalMS.P50, p50(up.intervals()), ms(upstreamEvery)/2, ms(upstreamEvery)*3/2)
	// A round trip is at least the answering side's delay: wstap reads the
	// ping before the peer does and the pong after it is sent. It stays below
	// the pinging side's next ping, which a pong matched to the wrong ping
	// would reach. upstream_pong_rtt: the upstream answering the client.
	check("upstream_pong_rtt_ms.p50", k.UpstreamPongRTTMS.P50, p50(clientRTT), ms(upstreamDelay), ms(clientEvery))
	check("client_pong_rtt_ms.p50", k.ClientPongRTTMS.P50, p50(upRTT), ms(clientDelay), ms(upstreamEvery))
	if k.PongRTTMS.P50 < ms(clientDelay) || k.PongRTTMS.Max < ms(upstreamDelay) || k.PongRTTMS.Max >= ms(clientEvery) {
		t.Errorf("pong_rtt_ms %+v: want p50 at least %v, max at least %v and below %v", k.PongRTTMS, clientDelay, upstreamDelay, clientEvery)
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
	var wrote, closed time.Time // on the upstream's side: before its echo, before its close
	upDone := make(chan struct{})
	upURL, _ := wsServer(t, false, func(c *websocket.Conn) {
		defer close(upDone)
		mt, m, err := c.ReadMessage()
		if err != nil {
			return
		}
		wrote = time.Now()
		c.WriteMessage(mt, m)
		time.Sleep(quiet)
		closed = time.Now()
		c.NetConn().Close()
	})
	p := startTestProxy(t, upURL, false, nil)
	c, _, err := p.dialer().Dial(p.url("/quiet"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hello(t, c)
	echoed := time.Now()
	_, _, err = c.ReadMessage()
	ended := time.Now()
	if !websocket.IsCloseError(err, websocket.CloseAbnormalClosure) {
		t.Errorf("client: %v, want 1006", err)
	}
	c.Close()
	<-upDone
	r := oneRecord(t, p)
	k := r.Keepalive
	// wstap read the echo after the upstream wrote it and before the client
	// had it, and the FIN after the upstream closed and before the client saw
	// it: the silence it records lies between what the peers measured.
	lo, hi := ms(closed.Sub(echoed)), ms(ended.Sub(wrote))
	t.Logf("silence_before_end_ms %.1f, max_silence_ms %.1f, client_silence_before_end_ms %.1f; the peers bound it to [%.1f, %.1f] ms",
		k.SilenceBeforeEnd, k.MaxSilenceMS, k.ClientSilenceBeforeEndMS, lo, hi)
	if k.SilenceBeforeEnd < lo-0.001 || k.SilenceBeforeEnd > hi+0.001 {
		t.Errorf("silence_before_end_ms %.3f: want between %.3f (upstream close - client's echo) and %.3f (client's end - upstream's echo)", k.SilenceBeforeEnd, lo, hi)
	}
	// Against the nominal quiet, one-sided: it is cut short only by the time
	// wstap took to read the echo, never by more than a tenth.
	if k.SilenceBeforeEnd < ms(quiet)*9/10 {
		t.Errorf("silence_before_end_ms %.1f: want at least 9/10 of the %v quiet", k.SilenceBeforeEnd, quiet)
	}
	if k.MaxSilenceMS < k.SilenceBeforeEnd {
		t.Errorf("max_silence_ms %.1f < silence_before_end_ms %.1f", k.MaxSilenceMS, k.SilenceBeforeEnd)
	}
	if k.ClientSilenceBeforeEndMS < k.SilenceBeforeEnd {
		t.Errorf("client_silence_before_end_ms %.1f < silence_before_end_ms %.1f", k.ClientSilenceBeforeEndMS, k.SilenceBeforeEnd)
	}
	checkEnd(t, r, endWant{"abnormal-upstream-drop", "upstream", "eof", closeCode(1006), closeCode(1006), true})
}

// TestLateAndUnansweredPongs: the upstream pings three times, 400 ms apart;
// the client answers the first two 150 ms late (LatePong is 100 ms) and never
// the third.
func TestLateAndUnansweredPongs(t *testing.T) {
	t.Parallel()
	const every, delay = 400 * time.Millisecond, 150 * time.Millisecond
	upURL, _ := wsServer(t, false, func(c *websocket.Conn) {
		for i := 0; i < 3; i++ {
			c.WriteControl(websocket.PingMessage, []byte("u"+strconv.Itoa(i)), time.Now().Add(time.Second))
			time.Sleep(every)
		}
		// Read the pongs (unread data would turn the close into a RST).
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		c.ReadMessage()
		c.NetConn().Close()
	})
	p := startTestProxy(t, upURL, false, nil, func(c *Config) { c.LatePong = 100 * time.Millisecond })
	rc := rawUpgraded(t, p, "/late")
	var held []float64 // the client's own measure: from reading a ping to having written its pong
	for i := 0; i < 3; i++ {
		b0, pl, _, err := rc.readFrame()
		if err != nil || b0 != 0x89 {
			t.Fatalf("ping %d: %#x %v", i, b0, err)
		}
		if i < 2 {
			read := time.Now()
			time.Sleep(delay)
			rc.Write(rawFrame(true, 0, 10, true, pl))
			held = append(held, ms(time.Since(read)))
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
	// The round trip holds the client's delay (wstap read the ping before the
	// client did), so: within 20% of what the client measured, at least the
	// delay, and below the upstream's next ping.
	if rtt := k.ClientPongRTTMS; rtt == nil || !within(rtt.P50, p50(held), 0.2) || rtt.P50 < ms(delay) || rtt.Max >= ms(every) {
		t.Errorf("client_pong_rtt_ms %+v: want p50 within 20%% of %.1f ms (the client's hold), at least %v, max below %v", rtt, p50(held), delay, every)
	}
	wantRules(t, "late", r, "late-pong", "unanswered-ping")
	checkEnd(t, r, endWant{"abnormal-upstream-drop", "upstream", "eof", closeCode(1006), closeCode(1006), true})
}
