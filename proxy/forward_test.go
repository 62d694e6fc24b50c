package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/wstap/wstap/capture"
)

// startForwardProxy starts wstap in forward mode (no upstream).
func startForwardProxy(t *testing.T, opts ...proxyOpt) *testProxy {
	t.Helper()
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := capture.OpenRecorder(filepath.Join(dir, "run"), capture.RunInfo{Version: "test"}, 0, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return startWith(t, Config{Listen: "127.0.0.1:0", CA: ca, Recorder: rec, Log: zerolog.Nop()}, rec, ca, filepath.Join(dir, "run"), opts...)
}

func startWith(t *testing.T, cfg Config, rec *capture.Recorder, ca *CA, dir string, opts ...proxyOpt) *testProxy {
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &testProxy{t: t, srv: srv, rec: rec, dir: dir, ca: ca}
	t.Cleanup(func() { p.stop() })
	return p
}

// forwardDialer is a gorilla client that goes through wstap with CONNECT, as
// the JMeter WebSocket samplers do.
func (p *testProxy) forwardDialer() *websocket.Dialer {
	pu, _ := url.Parse("http://" + p.srv.Addr().String())
	return &websocket.Dialer{Proxy: http.ProxyURL(pu), TLSClientConfig: &tls.Config{RootCAs: p.ca.Pool()},
		HandshakeTimeout: 5 * time.Second}
}

// TestForwardConnect: a gorilla client with its Proxy option reaches a ws
// and a wss upstream through CONNECT; the sessions are recorded with the
// CONNECT target, as reverse mode would.
func TestForwardConnect(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tlsOn), func(t *testing.T) {
			upURL, pool := wsServer(t, tlsOn, echo)
			p := startForwardProxy(t, func(c *Config) { c.UpstreamCAs = pool })
			c, _, err := p.forwardDialer().Dial(upURL+"/room?x=1", nil)
			if err != nil {
				t.Fatalf("dial through CONNECT: %v", err)
			}
			for i := 0; i < 3; i++ {
				c.WriteMessage(websocket.TextMessage, []byte("hi"))
				if _, m, err := c.ReadMessage(); err != nil || string(m) != "hi" {
					t.Fatalf("echo %q %v", m, err)
				}
			}
			c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
			c.ReadMessage()
			c.Close()
			p.waitRecords(1)
			recs := p.records()
			r := recs[0]
			u, _ := url.Parse(upURL)
			wantScheme := "ws://"
			if tlsOn {
				wantScheme = "wss://"
			}
			if r.Target != wantScheme+u.Host+"/room?x=1" || r.Verdict != "clean" || r.Mode != "forward" {
				t.Errorf("target %q verdict %s mode %s", r.Target, r.Verdict, r.Mode)
			}
			if tlsOn && (r.TLS.Client == nil || r.TLS.Client.Version == "" || r.TLS.Upstream == nil) {
				t.Errorf("TLS legs not recorded: %+v", r.TLS)
			}
			if r.Frames.ClientToUpstream.Text != 3 || r.Frames.UpstreamToClient.Text != 3 {
				t.Errorf("frames %+v", r.Frames)
			}
		})
	}
}

// TestForwardConnectManyOneLeaf: 1,000 concurrent CONNECT sessions to one host
// mint the leaf certificate once and are all recorded.
func TestForwardConnectManyOneLeaf(t *testing.T) {
	upURL, pool := wsServer(t, true, echo)
	p := startForwardProxy(t, func(c *Config) { c.UpstreamCAs = pool })
	const n = 1000
	d := p.forwardDialer()
	d.HandshakeTimeout = 60 * time.Second // 1,000 TLS handshakes on two cores, under -race
	var opened, wg sync.WaitGroup
	opened.Add(n)
	allOpen := make(chan struct{})
	dialing := make(chan struct{}, 64) // dials in flight; sessions stay open
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dialing <- struct{}{}
			c, _, err := d.Dial(upURL, nil)
			<-dialing
			opened.Done()
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			<-allOpen // all 1,000 are open at once before any closes
			c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
			c.ReadMessage()
		}()
	}
	opened.Wait()
	// The proxy counts a session open just after relaying its 101.
	for deadline := time.Now().Add(5 * time.Second); p.srv.Stats.Active.Load() < n && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if got := p.srv.Stats.Active.Load(); got != n {
		t.Errorf("%d sessions open at once, want %d", got, n)
	}
	close(allOpen)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	p.waitRecords(n)
	if m := p.ca.Minted(); m != 1 {
		t.Errorf("leaf minted %d times for one host, want 1", m)
	}
	recs := p.records()
	if len(recs) != n {
		t.Errorf("%d records, want %d", len(recs), n)
	}
	for _, r := range recs {
		if r.Verdict != "clean" || r.ConcurrentAtEnd > n {
			t.Fatalf("record %s: verdict %s concurrent_at_end %d", r.ID, r.Verdict, r.ConcurrentAtEnd)
		}
	}
}

// TestForwardBadInput: CONNECT to a closed port gets 502 with a reason and
// no session record; a malformed CONNECT line gets 400.
func TestForwardBadInput(t *testing.T) {
	p := startForwardProxy(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	for _, c := range []struct {
		req    string
		status string
	}{
		{"CONNECT " + closed + " HTTP/1.1\r\nHost: " + closed + "\r\n\r\n", "502"},
		{"CONNECT nohostport HTTP/1.1\r\n\r\n", "400"},
		{"GET /relative HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
	} {
		conn, err := net.Dial("tcp", p.srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conn.Write([]byte(c.req))
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if err != nil || !strings.Contains(line, " "+c.status+" ") {
			t.Errorf("%q: got %q %v, want %s", c.req, line, err, c.status)
		}
	}
	// A CONNECT whose dial failed is an http event, not a session
	// (TestConnectWithoutRequest checks the event).
	if recs := p.records(); len(recs) != 0 {
		t.Fatalf("records %+v, want none", recs)
	}
}
