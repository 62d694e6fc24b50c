package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/record"
	"github.com/wstap/wstap/frames"
)

// bufferedThen returns a reader that yields what br already holds and then
// reads conn directly, so br's buffer is not kept for the session's life.
func bufferedThen(br *bufio.Reader, conn net.Conn) io.Reader {
	n := br.Buffered()
	if n == 0 {
		return conn
	}
	b, _ := br.Peek(n)
	return io.MultiReader(bytes.NewReader(append([]byte(nil), b...)), conn)
}

// relay copies both directions until both have ended, mirroring each end to
// the other side: a FIN as a FIN (CloseWrite; close_notify first on TLS only
// where the peer sent one), a RST as a RST (SetLinger(0) and Close) —
// docs/records.md rule 3.
//
// Each direction runs in a goroutine of its own, started with a small stack;
// the second to end calls done.
func (ss *wsSession) relay(cliR, upR io.Reader, done func()) {
	ss.srv.mem.started()
	var left atomic.Int32
	left.Store(2)
	end := func() {
		if left.Add(-1) == 0 {
			done()
		}
	}
	go func() {
		ss.pump(clientToUpstream, gathered(ss.up), cliR)
		end()
	}()
	go func() {
		ss.pump(upstreamToClient, gathered(ss.cli), upR)
		end()
	}()
}

// pump is one direction: src is read, dst is written.
func (ss *wsSession) pump(dir direction, dst io.Writer, src io.Reader) {
	d := ss.dirs[dir]
	tap := ss.srv.cfg.Tap
	fromServer := dir == upstreamToClient
	live := &ss.live[dir]
	// The chunk is scanned here rather than by Copy (same order: scan,
	// write, then the recorder in bufs.Done) so that its frames are
	// published live once counted.
	onChunk := func(b []byte) {
		d.now = time.Now()
		d.nowNs = d.now.UnixNano()
		d.scanner.Feed(b)
		live.publish(d, len(b))
	}
	bufs := ss.srv.relayBuffers()
	bufs.Done = func(b []byte) {
		// The recorder builds its packets from b now, while it is in the
		// cache, and keeps nothing of it: the read buffer is reused at once.
		tap.Data(ss.id, capture.LegBoth, fromServer, d.now, b)
	}
	relayed, err := frames.Copy(dst, src, bufs, nil, onChunk)
	// Wire bytes of the frames as they came, not as their headers declared:
	// a frame cut short or declaring 2^63-1 bytes counts what was relayed.
	d.counts.Bytes = relayed
	if tun, n := d.scanner.Tunnel(); tun {
		d.counts.Tunnel, d.counts.TunnelBytes = true, n
		d.counts.Bytes = relayed - n
	}
	ss.ended(dir, err)
}

// legs returns the relayed and the raw TCP connection of a side.
func (ss *wsSession) legs(side record.Side) (conn, raw net.Conn) {
	if side == record.SideUpstream {
		return ss.up, ss.upRaw
	}
	return ss.cli, ss.cliRaw
}

// ended classifies why a direction stopped and mirrors it.
func (ss *wsSession) ended(dir direction, err error) {
	ss.mu.Lock()
	torn := ss.torn
	ss.mu.Unlock()
	if torn {
		return
	}
	now := time.Now()
	src, dst := dir.source(), dir.dest()
	srcConn, _ := ss.legs(src)
	srcLeg, dstLeg := legOf(src), legOf(dst)
	var ce *frames.CopyError
	errors.As(err, &ce)
	tap := ss.srv.cfg.Tap
	switch {
	case ce != nil && ce.Read && errors.Is(ce.Err, io.EOF):
		// The source sent FIN (after a close_notify or not): half-close
		// the other leg the same way.
		ss.setEnd(src, record.HowEOF, nil, now)
		notify := ss.peerEnded(src, srcConn, nil) != tlsEndTCP
		tap.End(ss.id, srcLeg, byPeer(srcLeg), false, now)
		// Recorded before it is sent: once sent, the peer's answering FIN,
		// recorded by the other direction, could reach the capture first.
		tap.End(ss.id, dstLeg, byProxy(dstLeg), false, now)
		ss.closeWrite(dst, notify)
	case ce != nil && ce.Read:
		how := readEndHow(srcConn, ce.Err)
		rst := how == record.HowReset
		ss.setEnd(ss.blame(src, srcConn, ce.Err, "reading"), how, ce.Err, now)
		ss.peerEnded(src, srcConn, ce.Err)
		tap.End(ss.id, srcLeg, byPeer(srcLeg), rst, now)
		tap.End(ss.id, dstLeg, byProxy(dstLeg), rst, now)
		ss.teardown(dst, src, rst)
	default:
		// Writing to the destination failed: that side is gone, or
		// wstap's own TLS stack failed to write to it.
		var e error = err
		if ce != nil {
			e = ce.Err
		}
		dstConn, _ := ss.legs(dst)
		how := record.HowError
		switch {
		case isReset(e):
			how = record.HowReset
		case isTLSError(dstConn, e):
			how = record.HowTLSError
		}
		rst := how == record.HowReset
		ss.setEnd(ss.blame(dst, dstConn, e, "writing"), how, e, now)
		if rst {
			ss.peerEnded(dst, dstConn, e)
		}
		tap.End(ss.id, dstLeg, byPeer(dstLeg), rst, now)
		tap.End(ss.id, srcLeg, byProxy(srcLeg), rst, now)
		ss.teardown(src, dst, rst)
	}
}

// blame is the side whose act ended the session when side's leg failed with
// err: wstap itself when its own TLS client on the upstream leg ended it (an
// alert it sent, a record it could not read), with a proxy-error finding
// that says what failed (docs/records.md, verdict proxy-error); else side.
// An alert the upstream sent is the upstream's act; a client's TLS errors
// stay the client's (a client's renegotiation, refused, as before).
func (ss *wsSession) blame(side record.Side, c net.Conn, err error, op string) record.Side {
	if side != record.SideUpstream || !isTLSError(c, err) {
		return side
	}
	if _, remote := tlsAlert(err); remote {
		return side
	}
	ss.finding(record.Finding{Rule: ruleProxyError, Severity: record.SevError,
		Detail: fmt.Sprintf("wstap's TLS client failed %s the upstream leg (%v) and ended the session; the client saw a 1006 that wstap caused", op, err)})
	return record.SideProxy
}

// ruleProxyError is the finding of a session wstap itself ended.
const ruleProxyError = "proxy-error"

// readEndHow classifies a read error other than a clean EOF.
func readEndHow(c net.Conn, err error) record.How {
	switch {
	case isReset(err):
		return record.HowReset
	case isTLSError(c, err):
		return record.HowTLSError
	}
	return record.HowError
}

// byPeer and byProxy give Tap.End's fromServer for an ending sent on leg l
// by the peer (the client or the upstream) or by wstap: the upstream is the
// server side of its leg, wstap the server side of the client leg.
func byPeer(l capture.Leg) bool  { return l == capture.LegUpstream }
func byProxy(l capture.Leg) bool { return l == capture.LegClient }

// teardown closes both legs: first, the other side of the failure, with a
// RST when rst (mirroring a reset the proxy saw on second), else with a bare
// FIN (the TCP connection is closed under TLS: no close_notify reaches a
// side whose peer sent none); second, the leg that failed.
func (ss *wsSession) teardown(first, second record.Side, rst bool) {
	_, firstRaw := ss.legs(first)
	_, secondRaw := ss.legs(second)
	ss.mu.Lock()
	ss.torn = true
	if rst {
		ss.ends.sent(first, tlsEndReset)
	} else {
		ss.ends.sent(first, tlsEndTCP)
	}
	ss.ends.sent(second, tlsEndTCP)
	ss.mu.Unlock()
	if rst {
		resetConn(firstRaw)
	} else {
		firstRaw.Close()
	}
	secondRaw.Close()
}

// closeWrite half-closes side's leg as its peer's counterpart ended:
// close_notify then a TCP FIN when notify (or on plain TCP), else a bare TCP
// FIN under the TLS connection (RFC 5246 §7.2.1, transparency rule 3).
func (ss *wsSession) closeWrite(side record.Side, notify bool) {
	c, raw := ss.legs(side)
	tc, isTLS := c.(interface{ CloseWrite() error })
	isTLS = isTLS && isTLSConn(c)
	end := tlsEndTCP
	if isTLS && notify {
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		tc.CloseWrite()
		end = tlsEndCloseNotify
	}
	ss.mu.Lock()
	ss.ends.sent(side, end)
	ss.mu.Unlock()
	if cw, ok := raw.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// resetConn closes a TCP connection with a RST (SO_LINGER 0).
func resetConn(raw net.Conn) {
	if tcp, ok := raw.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	raw.Close()
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}

// tlsEnds is how each TLS leg ended: what its peer did, and what wstap did
// to it; the peer's act, when known, is the leg's end.
type tlsEnds struct {
	peer, proxy [2]string // by sideIndex
}

func sideIndex(s record.Side) int {
	if s == record.SideUpstream {
		return 1
	}
	return 0
}

// sent notes what wstap did to side's leg, if it did nothing before.
func (e *tlsEnds) sent(side record.Side, end string) {
	if i := sideIndex(side); e.proxy[i] == "" {
		e.proxy[i] = end
	}
}

// of is side's end: its peer's, else wstap's, else def.
func (e *tlsEnds) of(side record.Side, def string) string {
	i := sideIndex(side)
	switch {
	case e.peer[i] != "":
		return e.peer[i]
	case e.proxy[i] != "":
		return e.proxy[i]
	}
	return def
}

// peerEnded notes how side's peer ended its TLS leg, whose reads (or writes)
// ended with err (nil: a TLS EOF), and returns it; "" on plain TCP or when
// the sniffer cannot tell.
func (ss *wsSession) peerEnded(side record.Side, c net.Conn, err error) string {
	sn := snifferOf(c)
	if sn == nil {
		return ""
	}
	end := sn.peerEnd(err)
	if end != "" {
		ss.mu.Lock()
		if i := sideIndex(side); ss.ends.peer[i] == "" {
			ss.ends.peer[i] = end
		}
		ss.mu.Unlock()
	}
	return end
}

// fillTLSEnds sets tls.*.end on each leg whose handshake completed; ss.mu
// is held. A leg nobody ended yet is one wstap closes when the record is
// written: under TLS (a bare FIN) after a relay, with tls.Conn.Close (a
// close_notify) after an upgrade that did not reach the relay.
func (ss *wsSession) fillTLSEnds(upgraded bool) {
	def := tlsEndCloseNotify
	if upgraded {
		def = tlsEndTCP
	}
	for _, side := range []record.Side{record.SideClient, record.SideUpstream} {
		if l := ss.tlsLeg(side); l != nil && l.Version != "" && l.Error == "" {
			l.End = ss.ends.of(side, def)
		}
	}
}

// tlsLeg is the record's TLS description of a side; nil for plain TCP.
func (ss *wsSession) tlsLeg(side record.Side) *record.TLSLeg {
	if side == record.SideClient {
		return ss.rec.TLS.Client
	}
	return ss.rec.TLS.Upstream
}
