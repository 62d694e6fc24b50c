package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/wstap/wstap/capture"
)

// serveForward handles a connection in forward mode: wstap is an HTTP proxy
// (jmeter -H 127.0.0.1 -P 8080). CONNECT tunnels are intercepted; requests
// in absolute form are forwarded.
func (s *Server) serveForward(raw net.Conn) {
	s.serveRequests(raw, raw, target{}, nil)
}

// preDialed is the upstream TCP connection dialed when the CONNECT came in,
// handed to the first WebSocket session of the tunnel.
type preDialed struct {
	mu   sync.Mutex
	conn net.Conn
}

func (p *preDialed) take() net.Conn {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.conn
	p.conn = nil
	return c
}

func (p *preDialed) close() {
	if c := p.take(); c != nil {
		c.Close()
	}
}

// forwardTarget derives the target of a request in absolute form
// (RFC 9112 §3.2.2), and rewrites its request line to origin form.
func forwardTarget(h *head) (target, error) {
	method, uri, proto, _ := requestLine(h.start)
	u, err := url.Parse(uri)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return target{}, fmt.Errorf("forward proxy: request target %q is not in absolute form (http://host/path) and no CONNECT came first", uri)
	}
	t := target{host: u.Hostname(), port: u.Port()}
	switch u.Scheme {
	case "https", "wss":
		t.tls = true
	case "http", "ws":
	default:
		return target{}, fmt.Errorf("forward proxy: scheme %q of %q is not http, https, ws or wss", u.Scheme, uri)
	}
	if t.port == "" {
		t.port = "80"
		if t.tls {
			t.port = "443"
		}
	}
	h.start = method + " " + u.RequestURI() + " " + proto
	return t, nil
}

// serveConnect intercepts a CONNECT tunnel (RFC 9110 §9.3.6). The upstream
// is dialed first, so a closed port gets 502 with the reason; then the first
// byte from the client tells TLS (a ClientHello, record type 22) from plain
// HTTP, and the tunnel's requests are served like reverse mode's.
//
// It returns true when a WebSocket session took the tunnel over.
func (s *Server) serveConnect(conn, raw net.Conn, br *bufio.Reader, h *head) bool {
	_, authority, _, _ := requestLine(h.start)
	host, port, err := net.SplitHostPort(authority)
	if err != nil || host == "" || port == "" {
		s.reject(conn, raw, 400, fmt.Sprintf("malformed CONNECT target %q: want host:port", authority))
		return false
	}
	tgt := target{host: host, port: port}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DialTimeout)
	upRaw, err := s.dialer().DialContext(ctx, "tcp", tgt.hostport())
	cancel()
	if err != nil {
		err = fmt.Errorf("dialing CONNECT target %s: %w", tgt.hostport(), err)
		s.connectEvent(raw, tgt, time.Since(start), 502, err.Error())
		s.reject502(conn, err)
		return false
	}
	pre := &preDialed{conn: upRaw}
	defer pre.close()
	_, err = conn.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n"))
	latency := time.Since(start)
	if err != nil {
		s.connectEvent(raw, tgt, latency, 200, "writing 200 Connection Established to the client: "+err.Error())
		return false
	}
	raw.SetReadDeadline(time.Now().Add(s.cfg.HeaderTimeout))
	first, err := br.Peek(1)
	raw.SetReadDeadline(time.Time{})
	if err != nil {
		if !s.isClosing() {
			s.connectEvent(raw, tgt, latency, 200, emptyTunnelReason(err, s.cfg.HeaderTimeout))
		}
		return false
	}
	tunnel := &bufferedConn{Conn: raw, r: br}
	if first[0] == 0x16 { // TLS handshake record (RFC 8446 §5.1)
		tgt.tls = true
		tgt.pre = pre
		tc, leg, err := s.serverTLS(tunnel, host)
		if err != nil {
			s.recordClientTLSFailure(raw, tgt, leg, err)
			return false
		}
		s.cfg.Recorder.Event(capture.Event{Level: zerolog.InfoLevel, Name: "tls", Fields: []any{"leg", "client",
			"version", leg.Version, "cipher", leg.Cipher, "sni", leg.SNI, "alpn", leg.ALPN, "handshake_ms", leg.HandshakeMS,
			"connect", tgt.hostport(), "client_addr", raw.RemoteAddr().String()}})
		return s.serveRequests(tc, raw, tgt, leg)
	}
	tgt.pre = pre
	return s.serveRequests(tunnel, raw, tgt, nil)
}

// connectEvent records a CONNECT tunnel in which no request was read (its
// dial failed, or the client sent nothing) as an http event, not a session
// (docs/records.md, "What is a session"): status is what wstap answered the
// CONNECT with, latency how long that answer took, reason why nothing went
// through the tunnel.
func (s *Server) connectEvent(raw net.Conn, tgt target, latency time.Duration, status int, reason string) {
	s.Stats.HTTP.Add(1)
	level := zerolog.InfoLevel
	if status >= 400 {
		level = zerolog.WarnLevel
	}
	s.cfg.Recorder.Event(capture.Event{Level: level, Name: capture.EventHTTP, Fields: []any{"method", "CONNECT",
		"url", tgt.hostport(), "target", tgt.hostport(), "status", status, "reason", reason,
		"latency_ms", round3(ms(latency)), "client", raw.RemoteAddr().String()}})
}

// emptyTunnelReason says why a tunnel carried no request.
func emptyTunnelReason(err error, timeout time.Duration) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Sprintf("the client sent nothing in the tunnel within --header-timeout (%s)", timeout)
	}
	if errors.Is(err, io.EOF) {
		return "the client closed the tunnel without sending anything"
	}
	return "reading the tunnel's first byte from the client: " + err.Error()
}

// bufferedConn reads through the bufio.Reader that already holds the
// tunnel's first bytes.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// CloseWrite half-closes the underlying TCP connection.
func (b *bufferedConn) CloseWrite() error {
	if cw, ok := b.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
