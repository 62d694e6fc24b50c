package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/record"
	"github.com/wstap/wstap/internal/renegtls"
)

// target is where a client's requests go: scheme ws/wss (http/https for
// plain requests), host and port.
type target struct {
	tls  bool
	host string
	port string
	// pre is the upstream connection a CONNECT already dialed (forward mode).
	pre *preDialed
}

func (t target) hostport() string { return net.JoinHostPort(t.host, t.port) }

// url renders the session's target: ws(s)://host:port/path?query with
// token-like query values redacted (docs/records.md, "Identity and timing").
func (t target) url(requestTarget string) string {
	scheme := "ws"
	if t.tls {
		scheme = "wss"
	}
	path := requestTarget
	if u, err := url.Parse(requestTarget); err == nil && u.IsAbs() {
		path = u.RequestURI()
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return capture.RedactURL(scheme + "://" + t.hostport() + path)
}

func upstreamTarget(u *url.URL) target {
	t := target{tls: u.Scheme == "wss", host: u.Hostname(), port: u.Port()}
	if t.port == "" {
		t.port = "80"
		if t.tls {
			t.port = "443"
		}
	}
	return t
}

// serveConn handles one accepted connection.
func (s *Server) serveConn(raw net.Conn) {
	defer s.wg.Done()
	if !s.trackConn(raw) {
		raw.Close()
		return
	}
	defer s.untrackConn(raw)
	if s.cfg.Upstream == nil {
		s.serveForward(raw)
		return
	}
	tgt := upstreamTarget(s.cfg.Upstream)
	conn := raw
	var cliTLS *record.TLSLeg
	if s.cfg.TLS {
		tc, leg, err := s.serverTLS(raw, tgt.host)
		if err != nil {
			s.recordClientTLSFailure(raw, tgt, leg, err)
			return
		}
		conn, cliTLS = tc, leg
	}
	s.serveRequests(conn, raw, tgt, cliTLS)
}

// serverTLS terminates the client's TLS with a leaf for host (or the SNI).
func (s *Server) serverTLS(raw net.Conn, host string) (*tls.Conn, *record.TLSLeg, error) {
	cfg := &tls.Config{
		GetCertificate: s.cfg.CA.GetCertificate(host),
		NextProtos:     []string{"http/1.1"},
		KeyLogWriter:   s.cfg.KeyLog,
		// Go's TLS server never renegotiates: a TLS 1.2 client's new
		// ClientHello gets a fatal unexpected_message alert (crypto/tls
		// handleRenegotiation), and the session ends.
		MinVersion:       tls.VersionTLS10,
		CurvePreferences: curvePreferences,
	}
	sn := newSniffer(raw, record.SideClient)
	tc := tls.Server(sn, cfg)
	start := time.Now()
	raw.SetDeadline(start.Add(s.cfg.HeaderTimeout))
	err := tc.Handshake()
	raw.SetDeadline(time.Time{})
	sn.arm()
	leg := tlsLeg(tc.ConnectionState(), time.Since(start), err)
	return tc, leg, err
}

// tlsLeg describes one TLS leg.
func tlsLeg(st tls.ConnectionState, d time.Duration, err error) *record.TLSLeg {
	leg := &record.TLSLeg{SNI: st.ServerName, ALPN: st.NegotiatedProtocol, Resumed: st.DidResume, HandshakeMS: round3(ms(d))}
	if st.Version != 0 {
		leg.Version = tls.VersionName(st.Version)
		leg.Cipher = tls.CipherSuiteName(st.CipherSuite)
	}
	if err != nil {
		leg.Error = err.Error()
		leg.Alert = alertOf(err)
	}
	return leg
}

func (s *Server) recordClientTLSFailure(raw net.Conn, tgt target, leg *record.TLSLeg, err error) {
	defer raw.Close()
	if isBenignTLSProbe(err, leg) {
		return
	}
	if leg.Alert == "" && errors.Is(err, io.EOF) {
		// The client got our certificate and hung up without an alert: the
		// JDK's HttpClient does so when it does not trust the CA (it logs
		// "Fatal (CERTIFICATE_UNKNOWN)" but never sends that alert).
		leg.Alert = "none: the client closed the connection after the server's certificate"
	}
	ss := newSession(s, s.newID())
	ss.rec.ClientAddr = raw.RemoteAddr().String()
	ss.rec.Target = tgt.url("/")
	ss.rec.Start = time.Now()
	ss.rec.TLS.Client = leg
	ss.rec.Verdict = record.VerdictTLSClient
	ss.setEnd(record.SideClient, record.HowTLSError, err, time.Now())
	ss.event(zerolog.WarnLevel, "tls", "leg", "client", "error", leg.Error, "alert", leg.Alert, "sni", leg.SNI)
	ss.finish(false)
}

// isBenignTLSProbe: a connection closed before a ClientHello was answered
// is not a session; one closed after our certificate is a client refusing it.
func isBenignTLSProbe(err error, leg *record.TLSLeg) bool {
	return errors.Is(err, io.EOF) && leg.Version == ""
}

// serveRequests reads requests from a client connection: WebSocket upgrades
// become sessions, other requests are forwarded as plain HTTP.
//
// It returns true when a WebSocket session took the connection over.
func (s *Server) serveRequests(conn, raw net.Conn, tgt target, cliTLS *record.TLSLeg) (handedOff bool) {
	br := bufio.NewReaderSize(conn, 4096)
	for first := true; ; first = false {
		raw.SetReadDeadline(time.Now().Add(s.cfg.HeaderTimeout))
		h, err := readHead(br, s.cfg.MaxHeaderBytes)
		if err != nil {
			s.rejectHead(conn, raw, err, first)
			conn.Close()
			return
		}
		raw.SetReadDeadline(time.Time{})
		method, _, _, err := requestLine(h.start)
		if err != nil {
			s.reject(conn, raw, 400, err.Error())
			conn.Close()
			return
		}
		reqTgt := tgt
		if tgt.host == "" {
			// Forward mode, outside a tunnel.
			if !s.admit(conn, raw, h) {
				conn.Close()
				return
			}
			if method == "CONNECT" {
				if s.serveConnect(conn, raw, br, h) {
					return true
				}
				conn.Close()
				return false
			}
			if reqTgt, err = forwardTarget(h); err != nil {
				s.reject(conn, raw, 400, err.Error())
				conn.Close()
				return
			}
		}
		if h.isWebSocket() {
			return s.serveSession(conn, raw, br, h, reqTgt, cliTLS)
		}
		if !s.forwardHTTP(conn, br, h, reqTgt) {
			conn.Close()
			return
		}
	}
}

// rejectHead answers a head that could not be read (docs/records.md, "What is a
// session, what is a rejected request").
func (s *Server) rejectHead(conn, raw net.Conn, err error, first bool) {
	if s.isClosing() {
		return // cut by Shutdown, not by the client
	}
	var ne net.Error
	switch {
	case errors.Is(err, errHeadTooLarge):
		s.reject(conn, raw, 431, fmt.Sprintf("request header block larger than --max-header-bytes (%d bytes)", s.cfg.MaxHeaderBytes))
	case errors.Is(err, errHeadMalformed):
		s.reject(conn, raw, 400, err.Error())
	case errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded):
		if !first && !errors.Is(err, errHeadCut) {
			return // an idle keep-alive connection, not a slow request
		}
		s.rejected(raw, "header-timeout", fmt.Sprintf("request headers not complete within --header-timeout (%s)", s.cfg.HeaderTimeout))
	case errors.Is(err, io.EOF) && !errors.Is(err, errHeadCut):
		// The client closed an idle connection: nothing to record.
	default:
		if !first && errors.Is(err, io.EOF) {
			return
		}
		s.rejected(raw, "incomplete-request", err.Error())
	}
}

// reject answers status with reason and records a rejected event.
func (s *Server) reject(conn, raw net.Conn, status int, reason string) {
	s.rejected(raw, fmt.Sprintf("http-%d", status), reason)
	body := reason + "\n"
	fmt.Fprintf(conn, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\nX-Wstap-Error: %s\r\n\r\n%s",
		status, statusText(status), len(body), strings.ReplaceAll(reason, "\n", " "), body)
}

func (s *Server) rejected(raw net.Conn, kind, reason string) {
	s.Stats.Rejected.Add(1)
	s.cfg.Recorder.Event(capture.Event{Level: zerolog.WarnLevel, Name: capture.EventRejected,
		Fields: []any{"kind", kind, "reason", reason, "client", raw.RemoteAddr().String()}})
}

func statusText(code int) string {
	switch code {
	case 400:
		return "Bad Request"
	case 431:
		return "Request Header Fields Too Large"
	case 502:
		return "Bad Gateway"
	case 504:
		return "Gateway Timeout"
	}
	return "Error"
}

// dialUpstream opens the upstream leg: TCP, then TLS for wss. The TLS client
// is renegtls's: a TLS 1.2 upstream may go on sending while it renegotiates,
// and wstap must read that data as the client would (transparency rule 3).
func (s *Server) dialUpstream(ctx context.Context, tgt target) (conn, raw net.Conn, leg *record.TLSLeg, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	if raw = tgt.pre.take(); raw == nil {
		raw, err = s.dialer().DialContext(ctx, "tcp", tgt.hostport())
		if err != nil {
			return nil, nil, nil, fmt.Errorf("dialing upstream %s: %w", tgt.hostport(), err)
		}
	}
	if !tgt.tls {
		return raw, raw, nil, nil
	}
	sn := newSniffer(raw, record.SideUpstream)
	tc, err := renegtls.Client(sn, s.tlsConfigUpstream(tgt.host),
		renegtls.Options{SessionCache: upstreamSessionCache, OnRenegotiation: sn.renegotiated})
	if err != nil {
		raw.Close()
		return nil, nil, nil, fmt.Errorf("TLS client for upstream %s: %w", tgt.hostport(), err)
	}
	start := time.Now()
	err = tc.HandshakeContext(ctx)
	sn.arm()
	leg = tlsLeg(tc.ConnectionState(), time.Since(start), err)
	if err != nil {
		raw.Close()
		return nil, nil, leg, fmt.Errorf("TLS handshake with upstream %s: %w", tgt.hostport(), err)
	}
	return tc, raw, leg, nil
}

// dialer dials the upstream: without TCP keep-alive unless --tcp-keepalive
// asks for it (transparency rule 2: wstap sends no probe the client did not).
func (s *Server) dialer() *net.Dialer {
	return &net.Dialer{KeepAlive: s.cfg.keepAlive()}
}
