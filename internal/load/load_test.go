package load

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"go.uber.org/goleak"

	"github.com/wstap/wstap/internal/platform"
	"github.com/wstap/wstap/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer is a gorilla/websocket echo server; it records the last
// upgrade request's headers.
func echoServer(t *testing.T) (*httptest.Server, func() http.Header) {
	t.Helper()
	var mu sync.Mutex
	var last http.Header
	echo := testkit.EchoHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		last = r.Header.Clone()
		mu.Unlock()
		if r.Header.Get("Authorization") == "Bearer bad" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		echo.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, func() http.Header {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

func wsURL(srv *httptest.Server) string { return "ws" + strings.TrimPrefix(srv.URL, "http") + "/echo" }

func startPlatform(t *testing.T, cfg platform.Config) *platform.Platform {
	t.Helper()
	p, err := platform.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func run(t *testing.T, cfg Config) *Result {
	t.Helper()
	res, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if t.Failed() || testing.Verbose() {
		var b bytes.Buffer
		res.WriteText(&b)
		t.Logf("\n%s", b.String())
	}
	return res
}

func TestThousandSessionsEcho(t *testing.T) {
	srv, _ := echoServer(t)
	const n = 1000
	res := run(t, Config{
		URL: wsURL(srv), Sessions: n, Ramp: time.Second, Hold: time.Second,
		Ping: 300 * time.Millisecond, MessageEvery: 200 * time.Millisecond, MessageSize: 128,
	})
	if res.Opened != n || res.FailedTotal() != 0 || len(res.Dropped1006) != 0 || res.Clean != n || res.CloseCodes[1000] != n {
		t.Errorf("opened %d, failed %v, dropped %d, clean %d, close codes %v; want all %d opened and closed cleanly",
			res.Opened, res.Failed, len(res.Dropped1006), res.Clean, res.CloseCodes, n)
	}
	if res.MessagesSent < n*2 || res.Echoes != res.MessagesSent || res.RTTP50 <= 0 || res.RTTP99 < res.RTTP50 {
		t.Errorf("%d messages, %d echoes, RTT p50 %v p99 %v: want every echo timed", res.MessagesSent, res.Echoes, res.RTTP50, res.RTTP99)
	}
	if res.PingsSent < n*2 {
		t.Errorf("%d pings sent, want about 3 per session", res.PingsSent)
	}
	if res.MaxConcurrent < n/4 {
		t.Errorf("at most %d open at once: the ramp did not overlap the holds", res.MaxConcurrent)
	}
}

// TestIdleTimeoutDropsOnlySilentSessions runs a silent group and a pinging
// group at the same time against a platform that drops after 1 s of client
// silence; the platform's own pings (answered) must not keep silence alive.
func TestIdleTimeoutDropsOnlySilentSessions(t *testing.T) {
	const idle = time.Second
	p := startPlatform(t, platform.Config{IdleTimeout: idle, PingEvery: 400 * time.Millisecond})
	base := Config{URL: p.URL(), Sessions: 50, Ramp: 200 * time.Millisecond, Hold: 1500 * time.Millisecond, Subprotocol: platform.Subprotocol}
	silent, pinging := base, base
	pinging.Ping = 300 * time.Millisecond

	var wg sync.WaitGroup
	var rs, rp *Result
	wg.Add(2)
	go func() { defer wg.Done(); rs, _ = Run(context.Background(), silent, nil) }()
	go func() { defer wg.Done(); rp, _ = Run(context.Background(), pinging, nil) }()
	wg.Wait()
	if rs == nil || rp == nil {
		t.Fatal("Run failed")
	}
	for _, r := range []*Result{rs, rp} {
		var b bytes.Buffer
		r.WriteText(&b)
		t.Logf("\n%s", b.String())
	}

	if len(rs.Dropped1006) != 50 || rs.DropsByHow()["eof"] != 50 || rs.CloseCodes[1006] != 50 {
		t.Errorf("silent: %d drops %v, close codes %v; want 50 dropped by a FIN", len(rs.Dropped1006), rs.DropsByHow(), rs.CloseCodes)
	}
	for _, d := range rs.Dropped1006 {
		if d.After < idle-100*time.Millisecond || d.After > idle+300*time.Millisecond || d.Closing {
			t.Errorf("silent: dropped %+v, want about %v after opening, before closing", d, idle)
			break
		}
	}
	if rs.ServerPings == 0 || rs.PongsSent != rs.ServerPings {
		t.Errorf("silent: answered %d of %d server pings, want all", rs.PongsSent, rs.ServerPings)
	}
	if len(rp.Dropped1006) != 0 || rp.Clean != 50 {
		t.Errorf("pinging: %d drops, %d clean; want none dropped, 50 clean", len(rp.Dropped1006), rp.Clean)
	}
	if s := p.Stats(); s.IdleDrops != 50 || s.CleanCloses != 50 {
		t.Errorf("platform stats %+v, want 50 idle drops and 50 clean closes", s)
	}
}

func TestCapResetAfter101(t *testing.T) {
	p := startPlatform(t, platform.Config{Cap: 5, CapDelay: 100 * time.Millisecond})
	res := run(t, Config{URL: p.URL(), Sessions: 10, Ramp: 100 * time.Millisecond, Hold: 600 * time.Millisecond})
	if res.Opened != 10 || len(res.Dropped1006) != 5 || res.DropsByHow()["reset"] != 5 || res.Clean != 5 {
		t.Fatalf("opened %d, drops %v, clean %d; want 10 opened, the 5 over the cap reset", res.Opened, res.DropsByHow(), res.Clean)
	}
	for _, d := range res.Dropped1006 {
		if d.After < 100*time.Millisecond || d.After > 400*time.Millisecond || d.Concurrent < 6 {
			t.Errorf("drop %+v: want a reset about 100ms after the 101, with more than 5 open", d)
		}
	}
}

func TestSubprotocolSelected(t *testing.T) {
	p := startPlatform(t, platform.Config{})
	offered := run(t, Config{URL: p.URL(), Sessions: 3, Subprotocol: platform.Subprotocol})
	none := run(t, Config{URL: p.URL(), Sessions: 2})
	if offered.Subprotocols[platform.Subprotocol] != 3 || none.Subprotocols[""] != 2 {
		t.Errorf("subprotocols %v offering it, %v not offering it", offered.Subprotocols, none.Subprotocols)
	}
}

func TestFailuresByReason(t *testing.T) {
	srv, lastHeaders := echoServer(t)
	tp := startPlatform(t, platform.Config{TLS: true})
	closed := testkit.FreeAddr(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, tp.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		cfg    Config
		reason string // "" means success
	}{
		{"refused", Config{URL: "ws://" + closed + "/"}, FailDial},
		{"forbidden", Config{URL: wsURL(srv), Headers: http.Header{"Authorization": {"Bearer bad"}}}, "http-status:403"},
		{"not websocket", Config{URL: strings.Replace(wsURL(srv), "ws://", "wss://", 1), Insecure: true}, FailTLS},
		{"untrusted", Config{URL: tp.URL()}, FailTLS},
		{"ca file", Config{URL: tp.URL(), CAFile: caFile}, ""},
		{"root pool", Config{URL: tp.URL(), RootCAs: tp.CertPool()}, ""},
		{"insecure", Config{URL: tp.URL(), Insecure: true}, ""},
		{"proxy down", Config{URL: wsURL(srv), Proxy: "http://" + closed}, FailProxy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Sessions = 2
			res := run(t, tc.cfg)
			if tc.reason == "" {
				if res.Opened != 2 || res.Clean != 2 {
					t.Errorf("opened %d, clean %d, failed %v", res.Opened, res.Clean, res.FailedExample)
				}
				return
			}
			if res.Failed[tc.reason] != 2 || res.Opened != 0 || res.FailedExample[tc.reason] == "" {
				t.Errorf("failed %v (%v), want 2 %s", res.Failed, res.FailedExample, tc.reason)
			}
		})
	}
	run(t, Config{URL: wsURL(srv), Sessions: 1, Headers: http.Header{"X-Plan": {"chat-1"}}})
	if got := lastHeaders().Get("X-Plan"); got != "chat-1" {
		t.Errorf("X-Plan header %q at the server, want chat-1", got)
	}
}

func TestThroughConnectProxy(t *testing.T) {
	srv, _ := echoServer(t)
	tp := startPlatform(t, platform.Config{TLS: true, PingEvery: 100 * time.Millisecond})
	proxy, connects := testkit.ConnectProxy(t)
	for _, url := range []string{wsURL(srv), tp.URL()} {
		res := run(t, Config{URL: url, Sessions: 20, Ramp: 100 * time.Millisecond, Hold: 300 * time.Millisecond,
			MessageEvery: 100 * time.Millisecond, Proxy: "http://" + proxy, RootCAs: tp.CertPool()})
		if res.Opened != 20 || res.Clean != 20 || res.Echoes == 0 {
			t.Errorf("%s through the proxy: opened %d, clean %d, echoes %d, failed %v", url, res.Opened, res.Clean, res.Echoes, res.FailedExample)
		}
	}
	if n := connects(); n != 40 {
		t.Errorf("%d CONNECTs, want 40", n)
	}
	res := run(t, Config{URL: "ws://forbidden.invalid:80/", Sessions: 1, Proxy: "http://" + proxy})
	if res.Failed[FailProxy] != 1 || !strings.Contains(res.FailedExample[FailProxy], "403") {
		t.Errorf("refused CONNECT: failed %v", res.FailedExample)
	}
}

func TestInterruptClosesCleanly(t *testing.T) {
	p := startPlatform(t, platform.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, Config{URL: p.URL(), Sessions: 20, Ramp: 20 * time.Second, Hold: time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Run took %v after the context ended", took)
	}
	if !res.Interrupted || res.Opened == 0 || res.Opened == 20 || res.Clean != res.Opened {
		t.Errorf("interrupted %v, opened %d, clean %d: want the opened ones closed cleanly", res.Interrupted, res.Opened, res.Clean)
	}
}

func TestSetupErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{URL: "http://x/", Sessions: 1}, "scheme"},
		{Config{URL: "ws://x/", Sessions: 0}, "sessions"},
		{Config{URL: "ws://x/", Sessions: 1, Proxy: "socks5://x:1"}, "proxy"},
		{Config{URL: "wss://x/", Sessions: 1, CAFile: "/nonexistent/ca.pem"}, "CA file"},
		{Config{URL: "ws://x/", Sessions: 1, LocalAddrs: []string{"nope"}}, "local address"},
		{Config{URL: "ws://x/", Sessions: 1, Hold: -time.Second}, "hold"},
	} {
		if _, err := Run(context.Background(), tc.cfg, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one naming %q", tc.cfg, err, tc.want)
		}
	}
}

func TestLocalAddrsAndProgressLines(t *testing.T) {
	defer func(d time.Duration) { lineEvery = d }(lineEvery)
	lineEvery = 100 * time.Millisecond
	srv, _ := echoServer(t)
	var progress testkit.SyncBuffer
	res, err := Run(context.Background(), Config{URL: wsURL(srv), Sessions: 4, Hold: 250 * time.Millisecond,
		LocalAddrs: []string{"127.0.0.2", "127.0.0.3"}}, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if res.Clean != 4 {
		t.Errorf("clean %d of 4, failed %v", res.Clean, res.FailedExample)
	}
	if !strings.Contains(progress.String(), "wstap load 0s: 4/4 open, 0 failed") {
		t.Errorf("progress %q, want a line every 100ms", progress.String())
	}
}

func TestNoAllocationPerMessage(t *testing.T) {
	w := make([]byte, 0, 256)
	msg := bytes.Repeat([]byte{'x'}, 128)
	allocs := testing.AllocsPerRun(100, func() {
		putStamp(msg, 123456789, 42)
		w = AppendClientFrame(w[:0], ws.OpText, Mask(), msg)
		if sent, id, ok := parseStamp(msg); !ok || sent != 123456789 || id != 42 {
			t.Fatal("stamp did not round-trip")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per message, want 0", allocs)
	}
	f, err := ws.ReadFrame(bytes.NewReader(w))
	if err != nil || !f.Header.Masked || f.Header.OpCode != ws.OpText {
		t.Fatalf("frame %+v, %v", f.Header, err)
	}
	if got := ws.UnmaskFrame(f).Payload; !bytes.Equal(got, msg) {
		t.Errorf("payload %q, want %q", got, msg)
	}
}

// TestClientFrameLengths checks the three length encodings against gobwas's
// reader, at and around their borders.
func TestClientFrameLengths(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 0xffff, 0x10000, 70000} {
		payload := bytes.Repeat([]byte{0xa5}, n)
		b := AppendClientFrame([]byte("prefix"), ws.OpBinary, [4]byte{1, 2, 3, 4}, payload)
		if string(b[:6]) != "prefix" {
			t.Fatalf("%d bytes: the prefix was overwritten", n)
		}
		f, err := ws.ReadFrame(bytes.NewReader(b[6:]))
		if err != nil || !f.Header.Fin || f.Header.OpCode != ws.OpBinary || f.Header.Length != int64(n) {
			t.Fatalf("%d bytes: header %+v, %v", n, f.Header, err)
		}
		if f.Header.Mask != [4]byte{1, 2, 3, 4} || !bytes.Equal(ws.UnmaskFrame(f).Payload, payload) {
			t.Errorf("%d bytes: mask %v or payload differ", n, f.Header.Mask)
		}
	}
}
