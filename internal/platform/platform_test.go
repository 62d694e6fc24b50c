package platform

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start runs a platform for one test.
func start(t *testing.T, cfg Config) *Platform {
	t.Helper()
	p, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// dial opens a gorilla client session, offering protocols.
func dial(t *testing.T, p *Platform, protocols ...string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{Subprotocols: protocols, HandshakeTimeout: 5 * time.Second}
	if pool := p.CertPool(); pool != nil {
		d.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	c, resp, err := d.Dial(p.URL(), nil)
	if err != nil {
		t.Fatalf("dialing %s: %v", p.URL(), err)
	}
	resp.Body.Close()
	t.Cleanup(func() { c.Close() })
	return c
}

// waitEnd reads until the session ends and returns the error and when.
func waitEnd(t *testing.T, c *websocket.Conn) (error, time.Time) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return err, time.Now()
		}
	}
}

func TestSubprotocolOnlyWhenOffered(t *testing.T) {
	p := start(t, Config{})
	for _, tc := range []struct {
		offer []string
		want  string
	}{
		{[]string{Subprotocol}, Subprotocol},
		{[]string{"v2.chat", Subprotocol}, Subprotocol},
		{[]string{"v2.chat"}, ""},
		{nil, ""},
	} {
		if got := dial(t, p, tc.offer...).Subprotocol(); got != tc.want {
			t.Errorf("offering %q: selected %q, want %q", tc.offer, got, tc.want)
		}
	}
}

func TestEchoTLS(t *testing.T) {
	p := start(t, Config{TLS: true})
	if !strings.HasPrefix(p.URL(), "wss://127.0.0.1:") || !strings.Contains(string(p.CertPEM()), "BEGIN CERTIFICATE") {
		t.Fatalf("URL %q, PEM %q", p.URL(), p.CertPEM())
	}
	c := dial(t, p, Subprotocol)
	for _, m := range []struct {
		typ  int
		data string
	}{
		{websocket.TextMessage, "hello"},
		{websocket.BinaryMessage, strings.Repeat("\x00\xff", 40000)},
		{websocket.TextMessage, strings.Repeat("x", 125)},
	} {
		if err := c.WriteMessage(m.typ, []byte(m.data)); err != nil {
			t.Fatal(err)
		}
		typ, got, err := c.ReadMessage()
		if err != nil || typ != m.typ || string(got) != m.data {
			t.Fatalf("echo of %d bytes: type %d, %d bytes, %v", len(m.data), typ, len(got), err)
		}
	}
}

func TestCleanClose(t *testing.T) {
	p := start(t, Config{})
	c := dial(t, p)
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	if err := c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	err, _ := waitEnd(t, c)
	if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("after close 1000: %v, want a close frame 1000 back", err)
	}
	waitStats(t, p, func(s Stats) bool { return s.CleanCloses == 1 && s.Current == 0 })
}

func TestPingsBothWays(t *testing.T) {
	p := start(t, Config{PingEvery: 50 * time.Millisecond})
	c := dial(t, p)
	var serverPings atomic.Int32
	c.SetPingHandler(func(data string) error {
		serverPings.Add(1)
		return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	pong := make(chan string, 1)
	c.SetPongHandler(func(data string) error {
		pong <- data
		return nil
	})
	if err := c.WriteControl(websocket.PingMessage, []byte("p1"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	c.ReadMessage() // runs the handlers until the deadline
	select {
	case got := <-pong:
		if got != "p1" {
			t.Errorf("pong %q, want p1", got)
		}
	default:
		t.Error("no pong to the client's ping")
	}
	if n := serverPings.Load(); n < 2 {
		t.Errorf("%d server pings in 300ms at 50ms, want several", n)
	}
}

func TestIdleDropIsFINWithoutCloseFrame(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		const idle = 300 * time.Millisecond
		// Server pings are answered with pongs: those must not keep a silent client alive.
		p := start(t, Config{TLS: useTLS, IdleTimeout: idle, PingEvery: 100 * time.Millisecond})
		opened := time.Now()
		silent := dial(t, p)
		talker := dial(t, p)

		stop := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			tick := time.NewTicker(idle / 3)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					done <- nil
					return
				case <-tick.C:
					if err := talker.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)); err != nil {
						done <- err
						return
					}
				}
			}
		}()

		err, at := waitEnd(t, silent)
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseAbnormalClosure {
			t.Fatalf("tls=%v: silent session ended with %v, want 1006 (no close frame)", useTLS, err)
		}
		if age := at.Sub(opened); age < idle || age > idle+400*time.Millisecond {
			t.Errorf("tls=%v: dropped after %v, want about %v", useTLS, age, idle)
		}
		time.Sleep(2 * idle)
		close(stop)
		if err := <-done; err != nil {
			t.Fatalf("tls=%v: pinging session dropped: %v", useTLS, err)
		}
		if s := p.Stats(); s.IdleDrops != 1 || s.Current != 1 {
			t.Errorf("tls=%v: stats %+v, want 1 idle drop and the pinging session still open", useTLS, s)
		}
	}
}

func TestCapResetsNewSessionsAfter101(t *testing.T) {
	p := start(t, Config{Cap: 2, CapDelay: 100 * time.Millisecond})
	dial(t, p)
	dial(t, p)
	over := dial(t, p, Subprotocol) // the 101 arrives
	opened := time.Now()
	err, at := waitEnd(t, over)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("over-cap session ended with %v, want a connection reset", err)
	}
	if age := at.Sub(opened); age < 80*time.Millisecond || age > time.Second {
		t.Errorf("reset %v after the 101, want about 100ms", age)
	}
	s := p.Stats()
	if s.Upgraded != 3 || s.CapDrops != 1 || s.Current != 2 || s.MaxCurrent != 2 {
		t.Errorf("stats %+v, want 3 upgraded, 1 cap drop, 2 current", s)
	}
}

func TestCloseEndsOpenSessions(t *testing.T) {
	p, err := Start(Config{TLS: true, Cap: 1, CapDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	a := dial(t, p)
	b := dial(t, p) // waiting for its reset
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, c := range []*websocket.Conn{a, b} {
		if err, _ := waitEnd(t, c); err == nil {
			t.Fatal("session survived Close")
		}
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Error("platform still accepts after Close")
	}
}

func TestNonWebSocketRequestRejected(t *testing.T) {
	p := start(t, Config{})
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64)
	n, _ := c.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 4") {
		t.Errorf("answer %q, want a 4xx", buf[:n])
	}
	waitStats(t, p, func(s Stats) bool { return s.Rejected == 1 && s.Upgraded == 0 })
}

// waitStats polls the platform's counters until ok or a second passed.
func waitStats(t *testing.T, p *Platform, ok func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for !ok(p.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", p.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPipelinedMessagesEchoedInOrder(t *testing.T) {
	p := start(t, Config{TLS: true})
	c := dial(t, p)
	const n = 500
	go func() {
		for i := range n {
			c.WriteMessage(websocket.BinaryMessage, []byte(strings.Repeat(string(rune('a'+i%26)), 1+i*37%3000)))
		}
	}()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range n {
		_, got, err := c.ReadMessage()
		want := strings.Repeat(string(rune('a'+i%26)), 1+i*37%3000)
		if err != nil || string(got) != want {
			t.Fatalf("echo %d: %d bytes, %v; want %d bytes of %q", i, len(got), err, len(want), want[:1])
		}
	}
}

func TestGivenCertificateIsPresented(t *testing.T) {
	certs, err := NewCerts()
	if err != nil {
		t.Fatal(err)
	}
	p := start(t, Config{TLS: true, Cert: &certs.Leaf})
	if p.CertPEM() != nil || p.CertPool() != nil {
		t.Errorf("CertPEM %q with a given certificate, want none", p.CertPEM())
	}
	conn, err := tls.Dial("tcp", p.Addr(), &tls.Config{RootCAs: certs.Pool, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatalf("dialing with the CA of NewCerts: %v", err)
	}
	defer conn.Close()
	st := conn.ConnectionState()
	if !st.PeerCertificates[0].Equal(certs.Leaf.Leaf) || st.NegotiatedProtocol != "http/1.1" {
		t.Errorf("presented %q, ALPN %q; want the given leaf and http/1.1", st.PeerCertificates[0].Subject, st.NegotiatedProtocol)
	}
}
