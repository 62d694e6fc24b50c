package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httputil"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/frames"
)

// serveSession relays one upgrade request and, after a 101, the frames. The
// request is forwarded as it is, however broken (docs/records.md, "What is a
// session"): the upstream decides, and the audit says what is wrong.
//
// It returns true when the upgraded session was handed to its two relay
// goroutines, which then own both connections; the caller's goroutine, whose
// stack grew through the handshakes, ends and frees it.
func (s *Server) serveSession(cli, cliRaw net.Conn, br *bufio.Reader, req *head, tgt target, cliTLS *capture.TLSLeg) (handedOff bool) {
	ss := newSession(s, s.newID())
	var cleanups []func()
	defer func() {
		if !handedOff {
			runCleanups(cleanups)
		}
	}()
	ss.cli, ss.cliRaw = cli, cliRaw
	start := time.Now()
	method, uri, proto, _ := requestLine(req.start)
	r := &ss.rec
	r.ClientAddr = cliRaw.RemoteAddr().String()
	r.Target = tgt.url(uri)
	r.Start = start
	r.TLS.Client = cliTLS
	r.Mode = "reverse"
	if s.cfg.Upstream == nil {
		r.Mode = "forward"
	}
	r.Handshake = capture.Handshake{Method: method, URI: capture.RedactURL(uri), Proto: proto,
		RequestHeaders: append([]capture.Header(nil), req.headers...)}
	cleanups = append(cleanups, func() { cli.Close() })
	if !s.track(ss) {
		ss.setEnd(capture.SideProxy, capture.HowShutdown, nil, time.Now())
		ss.stopping = true
		ss.finish(false)
		return
	}
	cleanups = append(cleanups, func() { s.untrack(ss) })
	s.Stats.Opened.Add(1)
	for _, f := range AuditRequest(&r.Handshake) {
		ss.finding(f)
	}
	for _, f := range s.audit.Begin(ss.id, &r.Handshake, start) {
		ss.finding(f)
	}

	up, upRaw, upTLS, err := s.dialUpstream(context.Background(), tgt)
	r.TLS.Upstream = upTLS
	if upTLS != nil {
		ss.event(tlsLevel(upTLS), "tls", "leg", "upstream", "version", upTLS.Version, "cipher", upTLS.Cipher, "sni", upTLS.SNI,
			"alpn", upTLS.ALPN, "resumed", upTLS.Resumed, "handshake_ms", upTLS.HandshakeMS, "error", upTLS.Error, "alert", upTLS.Alert)
	}
	if cliTLS != nil {
		ss.event(tlsLevel(cliTLS), "tls", "leg", "client", "version", cliTLS.Version, "cipher", cliTLS.Cipher, "sni", cliTLS.SNI,
			"alpn", cliTLS.ALPN, "resumed", cliTLS.Resumed, "handshake_ms", cliTLS.HandshakeMS)
	}
	if err != nil {
		how, verdict := capture.HowDialError, capture.VerdictUnreachable
		if upTLS != nil {
			how, verdict = capture.HowTLSError, capture.VerdictTLSUpstream
		}
		side := capture.SideUpstream
		if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
			// wstap itself is out of descriptors: the upstream is not at fault.
			side, how = capture.SideProxy, capture.HowError
			err = fmt.Errorf("wstap's open-file limit is reached: %w", err)
		}
		ss.setEnd(side, how, err, time.Now())
		r.Verdict = verdict
		s.reject502(cli, err)
		ss.finish(false)
		return
	}
	ss.up, ss.upRaw = up, upRaw
	for _, c := range []net.Conn{cli, up} {
		if sn := snifferOf(c); sn != nil {
			sn.attach(ss)
		}
	}
	cleanups = append(cleanups, func() { up.Close() })
	s.cfg.Tap.Open(&capture.Conv{Session: ss.id, Client: tcpAddr(cliRaw.RemoteAddr()), Listen: tcpAddr(cliRaw.LocalAddr()),
		Local: tcpAddr(upRaw.LocalAddr()), Upstream: tcpAddr(upRaw.RemoteAddr())}, capture.LegBoth, start)
	cleanups = append(cleanups, func() { s.cfg.Tap.Forget(ss.id) })
	r.UpstreamAddr = upRaw.RemoteAddr().String()

	// Forward the request with Host naming the upstream (reverse mode).
	if s.cfg.Upstream != nil {
		req.set("Host", hostHeader(tgt))
	}
	out := req.raw
	if s.cfg.Upstream != nil || !bytes.HasPrefix(req.raw, []byte(req.start+"\r\n")) {
		// Host rewritten (reverse mode) or the request line turned from
		// absolute form to origin form (forward mode).
		out = req.bytes()
	}
	s.cfg.Tap.Data(ss.id, capture.LegClient, false, start, req.raw)
	s.cfg.Tap.Data(ss.id, capture.LegUpstream, false, time.Now(), out)
	if _, err := up.Write(out); err != nil {
		ss.setEnd(capture.SideUpstream, endHow(err), fmt.Errorf("writing upgrade request upstream: %w", err), time.Now())
		r.Verdict = capture.VerdictUnreachable
		s.reject502(cli, err)
		ss.finish(false)
		return
	}
	ubr := bufio.NewReaderSize(up, 4096)
	resp, err := readHead(ubr, 1<<20)
	if err != nil {
		ss.setEnd(capture.SideUpstream, endHow(err), fmt.Errorf("reading the upgrade response: %w", err), time.Now())
		r.Verdict = capture.VerdictRejected
		if ss.stopping {
			r.Verdict = capture.VerdictShutdown
		}
		switch {
		case ss.stopping:
			s.reject502(cli, err)
		case isReset(err):
			// The upstream reset the connection before answering: the client
			// sees a reset, as it would without wstap (transparency rule 3).
			resetConn(cliRaw)
		case err == io.EOF:
			// The upstream closed before sending a byte of its answer: FIN.
			cli.Close()
		default:
			s.reject502(cli, err)
		}
		ss.finish(false)
		return
	}
	_, status, perr := statusLine(resp.start)
	hs := &r.Handshake
	hs.Status = status
	hs.ResponseHeaders = append([]capture.Header(nil), resp.headers...)
	hs.Subprotocol = resp.get("Sec-WebSocket-Protocol")
	hs.Extensions = resp.get("Sec-WebSocket-Extensions")
	hs.LatencyMS = round3(ms(time.Since(start)))
	for _, f := range AuditResponse(hs) {
		ss.finding(f)
	}
	now := time.Now()
	s.cfg.Tap.Data(ss.id, capture.LegBoth, true, now, resp.raw)
	ss.event(zerolog.InfoLevel, "handshake", "status", status, "latency_ms", hs.LatencyMS, "subprotocol", hs.Subprotocol, "target", r.Target)
	if _, err := cli.Write(resp.raw); err != nil {
		ss.setEnd(capture.SideClient, endHow(err), fmt.Errorf("writing the upgrade response to the client: %w", err), time.Now())
		r.Verdict = capture.VerdictAbnormalClient
		ss.finish(false)
		return
	}
	if perr != nil || status != 101 {
		// Any other answer reaches the client verbatim, body included
		// (transparency rule 4).
		relayBody(cli, ubr, resp, method)
		ss.setEnd(capture.SideUpstream, capture.HowHandshakeRejects, nil, time.Now())
		r.Verdict = capture.VerdictRejected
		ss.finish(false)
		return
	}

	// Upgraded: relay frames both ways.
	ss.upgradedAt = now
	s.active.Add(1)
	s.Stats.Active.Add(1)
	rsv := byte(0)
	if strings.Contains(strings.ToLower(hs.Extensions), "permessage-deflate") {
		rsv = 4 // RSV1, RFC 7692 §6
	}
	prefix := 0
	if len(s.cfg.Heartbeats)+len(s.cfg.AppClose) > 0 {
		prefix = 256
	}
	if s.cfg.LogPayloads {
		prefix = 1024
	}
	for d := range ss.dirs {
		o := &dirObs{ss: ss, dir: d, now: now}
		o.last.Store(now.UnixNano())
		o.active.Store(now.UnixNano())
		o.scanner = frames.NewScanner(o, d == c2u, rsv)
		o.scanner.DataPrefix = prefix
		ss.dirs[d] = o
	}
	s.wg.Add(1) // the session's own, released when both relays are done
	ss.relay(bufferedThen(br, cli), bufferedThen(ubr, up), func() {
		ss.finish(true)
		runCleanups(cleanups)
		s.wg.Done()
	})
	return true
}

// runCleanups undoes a session's setup, last step first.
func runCleanups(fs []func()) {
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

func tlsLevel(l *capture.TLSLeg) zerolog.Level {
	if l.Error != "" {
		return zerolog.WarnLevel
	}
	return zerolog.InfoLevel
}

func endHow(err error) string {
	if isReset(err) {
		return capture.HowReset
	}
	if isTLSError(err) {
		return capture.HowTLSError
	}
	if err == io.EOF || strings.Contains(err.Error(), "EOF") {
		return capture.HowEOF
	}
	return capture.HowError
}

func hostHeader(t target) string {
	if (t.tls && t.port == "443") || (!t.tls && t.port == "80") {
		return t.host
	}
	return t.hostport()
}

func tcpAddr(a net.Addr) *net.TCPAddr {
	ta, _ := a.(*net.TCPAddr)
	return ta
}

// reject502 tells the client the upstream could not be reached, with the reason.
func (s *Server) reject502(cli net.Conn, err error) {
	reason := err.Error()
	body := "wstap: " + reason + "\n"
	fmt.Fprintf(cli, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\nX-Wstap-Error: %s\r\n\r\n%s",
		len(body), strings.ReplaceAll(reason, "\n", " "), body)
}

// relayBody copies the body of a non-101 response to the client as it came:
// Content-Length bytes, a chunked body up to its last chunk, or until EOF.
func relayBody(cli net.Conn, ubr *bufio.Reader, resp *head, method string) {
	_, status, _ := statusLine(resp.start)
	if method == "HEAD" || status == 204 || status == 304 || (status >= 100 && status < 200) {
		return
	}
	if te := strings.ToLower(resp.get("Transfer-Encoding")); strings.Contains(te, "chunked") {
		tee := bufio.NewReader(io.TeeReader(ubr, cli))
		io.Copy(io.Discard, httputil.NewChunkedReader(tee))
		// Trailer section up to the blank line (RFC 9112 §7.1.2).
		for {
			line, err := tee.ReadString('\n')
			if err != nil || strings.TrimRight(line, "\r\n") == "" {
				return
			}
		}
	}
	if cl := resp.get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil {
			io.CopyN(cli, ubr, n)
			return
		}
	}
	io.Copy(cli, ubr)
}
