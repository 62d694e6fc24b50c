package proxy

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/wstap/wstap/capture"
)

// Slow-loris benchmark parameters (issue 9, item 3).
const (
	lorisHealthy       = 50                    // healthy echo sessions
	lorisEvery         = 20 * time.Millisecond // one echo per healthy session per tick
	lorisMessage       = 256                   // bytes per echo message
	lorisConns         = 5000                  // slow connections per wave, all pending at once
	lorisWaves         = 2                     // waves, one after the other
	lorisHeaderTimeout = 3 * time.Second       // the proxy's --header-timeout
	lorisQuiet         = 5 * time.Second       // the quiet measurement
	lorisDialers       = 50                    // concurrent dials of a wave
	lorisByteEvery     = time.Second           // a slow client's pace
	lorisSources       = 10                    // source addresses 127.0.0.2 ..
	// lorisCutSlack is how much later than the deadline (counted from the
	// start of the client's dial) a cut may come before it counts as late:
	// the accept queue and a loaded scheduler delay the proxy's clock start.
	lorisCutSlack = 1500 * time.Millisecond
)

// lorisHead is what a slow client trickles, a byte per second; it never
// gets past the first few bytes before the deadline.
const lorisHead = "GET /loris HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"

// Phases of the healthy sessions' measurements.
const (
	phaseQuiet   = iota // no attack
	phaseConnect        // a wave of slow connections is being dialed
	phasePending        // all of the wave are connected and trickling
	phaseCut            // the proxy is cutting them at the deadline
	phaseIdle           // between waves, after the run: not measured
	nPhases
)

var phaseNames = [nPhases]string{"quiet", "connect", "pending", "cut", "idle"}

// BenchmarkSlowLoris measures the echo round trip of 50 healthy sessions
// through the proxy in a quiet period, then during waves of 5,000
// slow-loris connections that trickle a request head a byte a second, and
// checks that the proxy cuts every one of them at its header deadline. It
// reports the quiet p99, the p99 over the whole attack (dialing, pending,
// cut) and in each part, and the ratio to the quiet p99; the issue asks for
// a ratio within 2, which is printed, not asserted. The slow clients run in
// the benchmark's own process, so their dialing competes with the proxy for
// the same cores.
//
//	go test -run '^$' -bench SlowLoris -benchtime 1x ./proxy
func BenchmarkSlowLoris(b *testing.B) {
	for range b.N {
		runSlowLoris(b)
	}
}

// lorisRTTs collects healthy echo round trips by phase.
type lorisRTTs struct {
	mu    sync.Mutex
	phase atomic.Int32
	rtt   [nPhases][]time.Duration
}

func (r *lorisRTTs) add(d time.Duration) {
	p := r.phase.Load()
	if p == phaseIdle {
		return
	}
	r.mu.Lock()
	r.rtt[p] = append(r.rtt[p], d)
	r.mu.Unlock()
}

func (r *lorisRTTs) sorted(phases ...int) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []time.Duration
	for _, p := range phases {
		all = append(all, r.rtt[p]...)
	}
	slices.Sort(all)
	return all
}

func runSlowLoris(b *testing.B) {
	b.StopTimer()
	upURL, closeUp := lorisEchoServer()
	defer closeUp()
	srv, rec := lorisProxy(b, upURL)
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			b.Errorf("proxy shutdown: %v", err)
		}
		if err := rec.Close(time.Now()); err != nil {
			b.Errorf("closing the recorder: %v", err)
		}
	}
	defer stop()
	addr := srv.Addr().String()

	rtts := &lorisRTTs{}
	healthyCtx, stopHealthy := context.WithCancel(context.Background())
	defer stopHealthy()
	var hwg sync.WaitGroup
	defer hwg.Wait()
	var healthyErrs atomic.Int64
	for i := range lorisHealthy {
		c, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://%s/healthy/%d", addr, i), nil)
		if err != nil {
			b.Fatalf("healthy session %d: dial through the proxy: %v", i, err)
		}
		hwg.Add(1)
		go func() {
			defer hwg.Done()
			if err := lorisHealthyLoop(healthyCtx, c, rtts); err != nil {
				healthyErrs.Add(1)
				b.Logf("healthy session %d: %v", i, err)
			}
		}()
	}

	b.StartTimer()
	time.Sleep(lorisQuiet)
	cuts := &lorisCuts{}
	for range lorisWaves {
		lorisWave(addr, rtts, cuts)
	}
	b.StopTimer()
	stopHealthy()
	hwg.Wait()
	rejected := srv.Stats.Rejected.Load()
	stop()
	lorisReport(b, rtts, cuts, rejected)
	if healthyErrs.Load() > 0 {
		b.Errorf("%d healthy sessions failed during the run", healthyErrs.Load())
	}
}

// lorisReport reports the figures and fails the benchmark when slow
// connections were not cut at the deadline.
func lorisReport(b *testing.B, rtts *lorisRTTs, cuts *lorisCuts, rejected int64) {
	quiet := rtts.sorted(phaseQuiet)
	attack := rtts.sorted(phaseConnect, phasePending, phaseCut)
	if len(quiet) == 0 || len(attack) == 0 {
		b.Fatalf("no echo timed: %d quiet, %d under attack", len(quiet), len(attack))
	}
	p99q, p99a := lorisPct(quiet, 0.99), lorisPct(attack, 0.99)
	b.ReportMetric(float64(lorisPct(quiet, 0.50).Microseconds()), "p50_quiet_us")
	b.ReportMetric(float64(p99q.Microseconds()), "p99_quiet_us")
	b.ReportMetric(float64(lorisPct(attack, 0.50).Microseconds()), "p50_loris_us")
	b.ReportMetric(float64(p99a.Microseconds()), "p99_loris_us")
	b.ReportMetric(float64(p99a)/float64(p99q), "ratio")
	pending := rtts.sorted(phasePending)
	b.ReportMetric(float64(lorisPct(pending, 0.99).Microseconds()), "p99_pending_us")
	b.ReportMetric(float64(lorisPct(pending, 0.99))/float64(p99q), "ratio_pending")
	b.ReportMetric(float64(rejected), "rejected")
	cutAt := slices.Sorted(slices.Values(cuts.after))
	b.ReportMetric(lorisPct(cutAt, 0.50).Seconds(), "cut_p50_s")
	b.ReportMetric(lorisPct(cutAt, 1).Seconds(), "cut_max_s")

	b.Logf("healthy echo RTT (%d sessions, %d B every %v):", lorisHealthy, lorisMessage, lorisEvery)
	for p := range phaseIdle {
		s := rtts.sorted(p)
		b.Logf("  %-8s %6d echoes  p50 %9v  p99 %9v  max %9v  p99/quiet %.2f", phaseNames[p], len(s),
			lorisPct(s, 0.5), lorisPct(s, 0.99), lorisPct(s, 1), float64(lorisPct(s, 0.99))/float64(p99q))
	}
	b.Logf("  attack   %6d echoes  p50 %9v  p99 %9v  p99/quiet %.2f (issue 9 asks ≤ 2)",
		len(attack), lorisPct(attack, 0.5), p99a, float64(p99a)/float64(p99q))
	b.Logf("slow-loris: %d waves of %d connections (max %d pending at once), %d cut by the proxy %v–%v after the dial started (p50 %v), %d late (> %v), %d early, %d dial errors, %d still open at the end; %d rejected events",
		lorisWaves, lorisConns, cuts.maxPending, len(cutAt), lorisPct(cutAt, 0), lorisPct(cutAt, 1), lorisPct(cutAt, 0.5),
		cuts.late, lorisHeaderTimeout+lorisCutSlack, cuts.early, cuts.dialErrs, cuts.uncut, rejected)

	if cuts.late > 0 || cuts.early > 0 || cuts.uncut > 0 {
		b.Errorf("of %d slow connections, %d were cut after %v, %d before %v, %d not at all",
			cuts.dialed, cuts.late, lorisHeaderTimeout+lorisCutSlack, cuts.early, lorisHeaderTimeout, cuts.uncut)
	}
	if cuts.maxPending < lorisConns*9/10 {
		b.Errorf("only %d slow connections were pending at once, want about %d", cuts.maxPending, lorisConns)
	}
	if rejected < int64(len(cutAt)) {
		b.Errorf("%d rejected events recorded for %d connections the proxy cut", rejected, len(cutAt))
	}
}

// lorisEchoServer is a gorilla echo server on loopback.
func lorisEchoServer() (url string, closeFn func()) {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		echo(c)
	}))
	return "ws://" + ts.Listener.Addr().String(), ts.Close
}

// lorisProxy starts a reverse proxy in front of upstream with the short
// header timeout, recording into a temp dir.
func lorisProxy(b *testing.B, upstream string) (*Server, *capture.Recorder) {
	rec, err := capture.OpenRecorder(filepath.Join(b.TempDir(), "run"), capture.RunInfo{Version: "bench"}, 0, os.Stderr)
	if err != nil {
		b.Fatalf("opening the recorder: %v", err)
	}
	u, err := url.Parse(upstream)
	if err != nil {
		b.Fatalf("upstream %q: %v", upstream, err)
	}
	srv, err := Start(Config{Listen: "127.0.0.1:0", Upstream: u, Recorder: rec, Log: zerolog.Nop(),
		HeaderTimeout: lorisHeaderTimeout})
	if err != nil {
		rec.Close(time.Now())
		b.Fatalf("starting the proxy: %v", err)
	}
	return srv, rec
}

// lorisHealthyLoop sends a message every lorisEvery and times its echo until
// ctx ends, then closes the session.
func lorisHealthyLoop(ctx context.Context, c *websocket.Conn, rtts *lorisRTTs) error {
	defer c.Close()
	msg := make([]byte, lorisMessage)
	tick := time.NewTicker(lorisEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
			return nil
		case <-tick.C:
		}
		start := time.Now()
		c.SetWriteDeadline(start.Add(5 * time.Second))
		if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			return fmt.Errorf("writing: %w", err)
		}
		c.SetReadDeadline(start.Add(5 * time.Second))
		if _, p, err := c.ReadMessage(); err != nil {
			return fmt.Errorf("reading the echo: %w", err)
		} else if len(p) != lorisMessage {
			return fmt.Errorf("echo of %d bytes, want %d", len(p), lorisMessage)
		}
		rtts.add(time.Since(start))
	}
}
