package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/record"
	"github.com/wstap/wstap/internal/testkit"
)

// testProxy is a proxy recording into a temp run dir.
type testProxy struct {
	t    *testing.T
	srv  *Server
	rec  *capture.Recorder
	dir  string
	ca   *CA
	tls  bool
	done bool
}

type proxyOpt func(*Config)

// startTestProxy starts a reverse proxy in front of upstream (a ws:// or
// wss:// URL); upstreamCAs trusts a test server's certificate.
func startTestProxy(t *testing.T, upstream string, clientTLS bool, upstreamCAs *x509.CertPool, opts ...proxyOpt) *testProxy {
	t.Helper()
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := capture.OpenRecorder(filepath.Join(dir, "run"), capture.RunInfo{Version: "test"}, 0, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Listen: "127.0.0.1:0", Upstream: u, TLS: clientTLS, CA: ca, UpstreamCAs: upstreamCAs,
		Recorder: rec, Log: zerolog.Nop()}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &testProxy{t: t, srv: srv, rec: rec, dir: filepath.Join(dir, "run"), ca: ca, tls: clientTLS}
	t.Cleanup(func() { p.stop() })
	return p
}

// url is the proxy's address as a client dials it.
func (p *testProxy) url(path string) string {
	if p.tls {
		return "wss://" + p.srv.Addr().String() + path
	}
	return "ws://" + p.srv.Addr().String() + path
}

func (p *testProxy) dialer() *websocket.Dialer {
	return &websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: p.ca.Pool()}, HandshakeTimeout: 5 * time.Second,
		ReadBufferSize: 4096, WriteBufferSize: 4096}
}

// stop shuts the proxy down and flushes the records.
func (p *testProxy) stop() {
	if p.done {
		return
	}
	p.done = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.srv.Shutdown(ctx); err != nil {
		p.t.Error(err)
	}
	if err := p.rec.Close(time.Now()); err != nil {
		p.t.Error(err)
	}
}

// records stops the proxy and returns sessions.jsonl, each line parsed.
func (p *testProxy) records() []record.Session {
	p.t.Helper()
	p.stop()
	return testkit.ReadJSONL[record.Session](p.t, filepath.Join(p.dir, "sessions.jsonl"))
}

// waitRecords waits until n sessions have been recorded (sessions end
// asynchronously after the client returns).
func (p *testProxy) waitRecords(n int64) {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.rec.Counters().Sessions < n {
		if time.Now().After(deadline) {
			p.t.Fatalf("only %d of %d sessions recorded", p.rec.Counters().Sessions, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wsServer is an upstream built with gorilla/websocket that offers the
// subprotocol v1.chat: handle runs per session.
func wsServer(t *testing.T, tlsOn bool, handle func(c *websocket.Conn)) (url string, pool *x509.CertPool) {
	t.Helper()
	up := &websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }, Subprotocols: []string{"v1.chat"}}
	return testkit.WSServer(t, tlsOn, up, handle)
}

// echo echoes every message until the connection ends.
func echo(c *websocket.Conn) { testkit.Echo(c) }
