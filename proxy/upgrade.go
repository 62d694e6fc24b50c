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
	"github.com/wstap/wstap/capture/record"
	"github.com/wstap/wstap/frames"
)

// upgrade is one upgrade request on its way to a relay: what the steps of
// serveSession share.
type upgrade struct {
	s      *Server
	ss     *wsSession
	req    *head
	tgt    target
	method string
	start  time.Time
	br     *bufio.Reader // the client's: bytes after the request stay in it
	ubr    *bufio.Reader // the upstream's: bytes after the 101 stay in it
	resp   *head
	// counted: the record holds its concurrency at the answer.
	counted bool
	// cleanups undo the setup, last step first, unless the relay took over.
	cleanups []func()
}

// serveSession relays one upgrade request and, after a 101, the frames. The
// request is forwarded as it is, however broken (docs/records.md, "What is a
// session"): the upstream decides, and the audit says what is wrong. Its
// steps run in order; the first that fails ends the session with fail.
//
// It returns true when the upgraded session was handed to its two relay
// goroutines, which then own both connections; the caller's goroutine, whose
// stack grew through the handshakes, ends and frees it.
func (s *Server) serveSession(cli, cliRaw net.Conn, br *bufio.Reader, req *head, tgt target, cliTLS *record.TLSLeg) (handedOff bool) {
	u := s.newUpgrade(cli, cliRaw, br, req, tgt, cliTLS)
	defer func() {
		if !handedOff {
			runCleanups(u.cleanups)
		}
	}()
	if !u.begin() || !u.dial() || !u.forward() || !u.answer() {
		return false
	}
	u.startRelay()
	return true
}

// newUpgrade starts the record of a session with its request.
func (s *Server) newUpgrade(cli, cliRaw net.Conn, br *bufio.Reader, req *head, tgt target, cliTLS *record.TLSLeg) *upgrade {
	ss := newSession(s, s.newID())
	ss.cli, ss.cliRaw = cli, cliRaw
	u := &upgrade{s: s, ss: ss, req: req, tgt: tgt, br: br, start: time.Now()}
	method, uri, proto, _ := requestLine(req.start)
	u.method = method
	r := &ss.rec
	r.ClientAddr = cliRaw.RemoteAddr().String()
	r.Target = tgt.url(uri)
	r.Start = u.start
	r.TLS.Client = cliTLS
	r.Mode = "reverse"
	if s.cfg.Upstream == nil {
		r.Mode = "forward"
	}
	r.Handshake = record.Handshake{Method: method, URI: capture.RedactURL(uri), Proto: proto,
		RequestHeaders: append([]record.Header(nil), req.headers...)}
	r.Credential = credentialID(req.headers, uri)
	u.cleanups = append(u.cleanups, func() { cli.Close() })
	return u
}

// fail ends a session whose upgrade stopped before the relay: side and how
// are its first end, err what the record says of it. The failed step has
// answered the client already. It returns false, for "return u.fail(...)".
func (u *upgrade) fail(side record.Side, how record.How, verdict record.Verdict, err error) bool {
	if !u.counted {
		u.countAtAnswer()
	}
	u.ss.setEnd(side, how, err, time.Now())
	u.ss.rec.Verdict = verdict
	u.ss.finish(false)
	return false
}

// begin counts the session among the open ones and audits its request.
func (u *upgrade) begin() bool {
	s, ss := u.s, u.ss
	if !s.track(ss) {
		ss.mu.Lock()
		ss.stopping = true
		ss.mu.Unlock()
		return u.fail(record.SideProxy, record.HowShutdown, record.VerdictShutdown, nil)
	}
	u.cleanups = append(u.cleanups, func() { s.untrack(ss) })
	s.Stats.Opened.Add(1)
	for _, f := range AuditRequest(&ss.rec.Handshake) {
		ss.finding(f)
	}
	for _, f := range s.audit.Begin(ss.id, &ss.rec.Handshake, u.start) {
		ss.finding(f)
	}
	return true
}

// dial opens the upstream leg. A failure gets the client a 502 that says why.
func (u *upgrade) dial() bool {
	s, ss := u.s, u.ss
	up, upRaw, upTLS, err := s.dialUpstream(context.Background(), u.tgt)
	ss.rec.TLS.Upstream = upTLS
	ss.tlsEvents()
	if err != nil {
		side, how, verdict := record.SideUpstream, record.HowDialError, record.VerdictUnreachable
		if upTLS != nil {
			how, verdict = record.HowTLSError, record.VerdictTLSUpstream
		}
		if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
			// wstap itself is out of descriptors: the upstream is not at fault.
			side, how = record.SideProxy, record.HowError
			err = fmt.Errorf("wstap's open-file limit is reached: %w", err)
		}
		s.reject502(ss.cli, err)
		return u.fail(side, how, verdict, err)
	}
	ss.up, ss.upRaw = up, upRaw
	for _, c := range []net.Conn{ss.cli, up} {
		if sn := snifferOf(c); sn != nil {
			sn.attach(ss)
		}
	}
	u.cleanups = append(u.cleanups, func() { up.Close() })
	cliRaw := ss.cliRaw
	s.cfg.Tap.Open(&capture.Conv{Session: ss.id, Client: tcpAddr(cliRaw.RemoteAddr()), Listen: tcpAddr(cliRaw.LocalAddr()),
		Local: tcpAddr(upRaw.LocalAddr()), Upstream: tcpAddr(upRaw.RemoteAddr())}, capture.LegBoth, u.start)
	u.cleanups = append(u.cleanups, func() { s.cfg.Tap.Forget(ss.id) })
	ss.rec.UpstreamAddr = upRaw.RemoteAddr().String()
	return true
}

// tlsEvents logs the TLS of both legs, once the upstream's is known.
func (ss *wsSession) tlsEvents() {
	if l := ss.rec.TLS.Upstream; l != nil {
		ss.event(tlsLevel(l), "tls", "leg", "upstream", "version", l.Version, "cipher", l.Cipher, "sni", l.SNI,
			"alpn", l.ALPN, "resumed", l.Resumed, "handshake_ms", l.HandshakeMS, "error", l.Error, "alert", l.Alert)
	}
	if l := ss.rec.TLS.Client; l != nil {
		ss.event(tlsLevel(l), "tls", "leg", "client", "version", l.Version, "cipher", l.Cipher, "sni", l.SNI,
			"alpn", l.ALPN, "resumed", l.Resumed, "handshake_ms", l.HandshakeMS)
	}
}

// forward sends the request upstream and reads the head of its answer.
func (u *upgrade) forward() bool {
	s, ss := u.s, u.ss
	out := u.outgoing()
	s.cfg.Tap.Data(ss.id, capture.LegClient, false, u.start, u.req.raw)
	s.cfg.Tap.Data(ss.id, capture.LegUpstream, false, time.Now(), out)
	if _, err := ss.up.Write(out); err != nil {
		s.reject502(ss.cli, err)
		return u.fail(record.SideUpstream, endHow(ss.up, err), record.VerdictUnreachable,
			fmt.Errorf("writing upgrade request upstream: %w", err))
	}
	u.ubr = bufio.NewReaderSize(ss.up, 4096)
	resp, err := readHead(u.ubr, 1<<20)
	if err != nil {
		verdict := record.VerdictRejected
		if ss.isStopping() {
			verdict = record.VerdictShutdown
		}
		u.mirrorCut(err)
		return u.fail(record.SideUpstream, endHow(ss.up, err), verdict, fmt.Errorf("reading the upgrade response: %w", err))
	}
	u.resp = resp
	return true
}

// outgoing is the request as it goes upstream: with Host naming the
// upstream in reverse mode, in origin form in forward mode.
func (u *upgrade) outgoing() []byte {
	req := u.req
	if u.s.cfg.Upstream != nil {
		req.set("Host", hostHeader(u.tgt))
		return req.bytes()
	}
	if !bytes.HasPrefix(req.raw, []byte(req.start+"\r\n")) {
		// The request line turned from absolute form to origin form.
		return req.bytes()
	}
	return req.raw
}

// mirrorCut answers a client whose upstream ended before its answer head
// was complete as the upstream did, so the client sees what it would see
// without wstap (transparency rule 3): a reset as a reset, a FIN before the
// first byte as a FIN; anything else, or wstap shutting down, gets a 502.
func (u *upgrade) mirrorCut(err error) {
	ss := u.ss
	switch {
	case ss.isStopping():
		u.s.reject502(ss.cli, err)
	case isReset(err):
		resetConn(ss.cliRaw)
	case err == io.EOF:
		ss.cli.Close()
	default:
		u.s.reject502(ss.cli, err)
	}
}

// answer records the upstream's answer and relays it to the client. Any
// answer but a 101 reaches the client verbatim, body included
// (transparency rule 4), and ends the session.
func (u *upgrade) answer() bool {
	s, ss, resp := u.s, u.ss, u.resp
	r := &ss.rec
	_, status, perr := statusLine(resp.start)
	hs := &r.Handshake
	hs.Status = status
	hs.ResponseHeaders = append([]record.Header(nil), resp.headers...)
	hs.Subprotocol = resp.get("Sec-WebSocket-Protocol")
	hs.Extensions = resp.get("Sec-WebSocket-Extensions")
	hs.LatencyMS = round3(ms(time.Since(u.start)))
	for _, f := range AuditResponse(hs) {
		ss.finding(f)
	}
	now := time.Now()
	u.countAtAnswer()
	s.cfg.Tap.Data(ss.id, capture.LegBoth, true, now, resp.raw)
	ss.event(zerolog.InfoLevel, "handshake", "status", status, "latency_ms", hs.LatencyMS, "subprotocol", hs.Subprotocol, "target", r.Target)
	if _, err := ss.cli.Write(resp.raw); err != nil {
		return u.fail(record.SideClient, endHow(ss.cli, err), record.VerdictAbnormalClient,
			fmt.Errorf("writing the upgrade response to the client: %w", err))
	}
	if perr != nil || status != 101 {
		relayBody(ss.cli, u.ubr, resp, u.method)
		return u.fail(record.SideUpstream, record.HowHandshakeRejects, record.VerdictRejected, nil)
	}
	// The 101 has reached the client: from now on the session is open, and
	// counted so until finish (docs/records.md, "concurrent_at_open").
	r.ConcurrentAtOpen = int(s.active.Add(1))
	s.Stats.Active.Add(1)
	r.CredentialConcurrentAtOpen = s.creds.opened(r.Credential)
	ss.upgradedAt = now
	return true
}

// countAtAnswer records the upgraded sessions open, in all and with this
// request's credential, when an answer that is not (yet) a relayed 101
// came: what a cap that refuses upgrades saw.
func (u *upgrade) countAtAnswer() {
	r := &u.ss.rec
	u.counted = true
	r.ConcurrentAtOpen = int(u.s.active.Load())
	r.CredentialConcurrentAtOpen = u.s.creds.now(r.Credential)
}

// startRelay hands the upgraded session to its two relay goroutines, with
// a frame scanner per direction.
func (u *upgrade) startRelay() {
	s, ss := u.s, u.ss
	rsv := byte(0)
	if strings.Contains(strings.ToLower(ss.rec.Handshake.Extensions), "permessage-deflate") {
		rsv = 4 // RSV1, RFC 7692 §6
	}
	prefix := 0
	if len(s.cfg.Heartbeats)+len(s.cfg.AppClose) > 0 {
		prefix = 256
	}
	if s.cfg.LogPayloads {
		prefix = 1024
	}
	now := ss.upgradedAt
	for d := range numDirections {
		o := &dirObs{ss: ss, dir: d, now: now}
		o.last.Store(now.UnixNano())
		o.active.Store(now.UnixNano())
		o.scanner = frames.NewScanner(o, d == clientToUpstream, rsv)
		o.scanner.DataPrefix = prefix
		ss.dirs[d] = o
	}
	s.wg.Add(1) // the session's own, released when both relays are done
	cleanups := u.cleanups
	ss.relay(coalesced(bufferedThen(u.br, ss.cli), ss.cli), coalesced(bufferedThen(u.ubr, ss.up), ss.up), func() {
		ss.finish(true)
		runCleanups(cleanups)
		s.wg.Done()
	})
}

// runCleanups undoes a session's setup, last step first.
func runCleanups(fs []func()) {
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

func tlsLevel(l *record.TLSLeg) zerolog.Level {
	if l.Error != "" {
		return zerolog.WarnLevel
	}
	return zerolog.InfoLevel
}

// endHow classifies an error of the upgrade exchange on c: a connection
// that ended, cleanly or inside a head, is an EOF.
func endHow(c net.Conn, err error) record.How {
	switch {
	case isReset(err):
		return record.HowReset
	case isTLSError(c, err):
		return record.HowTLSError
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return record.HowEOF
	}
	return record.HowError
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
