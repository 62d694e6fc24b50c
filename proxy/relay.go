package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wstap/wstap/capture"
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
// the other side: a FIN as a FIN (CloseWrite; close_notify first on TLS), a
// RST as a RST (SetLinger(0) and Close) — docs/records.md rule 3.
//
// Each direction runs in a goroutine of its own, started with a small stack;
// the second to end calls done.
func (ss *wsSession) relay(cliR, upR io.Reader, done func()) {
	var left atomic.Int32
	left.Store(2)
	end := func() {
		if left.Add(-1) == 0 {
			done()
		}
	}
	go func() {
		ss.pump(c2u, ss.up, cliR)
		end()
	}()
	go func() {
		ss.pump(u2c, ss.cli, upR)
		end()
	}()
}

// pump is one direction: src is read, dst is written.
func (ss *wsSession) pump(dir int, dst io.Writer, src io.Reader) {
	d := ss.dirs[dir]
	tap := ss.srv.cfg.Tap
	fromServer := dir == u2c
	onChunk := func(b []byte) {
		d.now = time.Now()
		d.nowNs = d.now.UnixNano()
		tap.Data(ss.id, capture.LegBoth, fromServer, d.now, b)
	}
	relayed, err := frames.Copy(dst, src, ss.srv.relayBuffers(), d.scanner, onChunk)
	// Wire bytes of the frames as they came, not as their headers declared:
	// a frame cut short or declaring 2^63-1 bytes counts what was relayed.
	d.counts.Bytes = relayed
	if tun, n := d.scanner.Tunnel(); tun {
		d.counts.Tunnel, d.counts.TunnelBytes = true, n
		d.counts.Bytes = relayed - n
	}
	ss.ended(dir, err)
}

// ended classifies why a direction stopped and mirrors it.
func (ss *wsSession) ended(dir int, err error) {
	now := time.Now()
	srcSide, dstSide := capture.SideClient, capture.SideUpstream
	srcRaw, dstRaw, dst, srcConn := ss.cliRaw, ss.upRaw, ss.up, ss.cli
	leg := capture.LegClient
	if dir == u2c {
		srcSide, dstSide = capture.SideUpstream, capture.SideClient
		srcRaw, dstRaw, dst, srcConn = ss.upRaw, ss.cliRaw, ss.cli, ss.up
		leg = capture.LegUpstream
	}
	ss.mu.Lock()
	torn := ss.torn
	ss.mu.Unlock()
	if torn {
		return
	}
	var ce *frames.CopyError
	errors.As(err, &ce)
	tap := ss.srv.cfg.Tap
	switch {
	case ce != nil && ce.Read && errors.Is(ce.Err, io.EOF):
		// The source sent FIN (or close_notify then FIN): half-close the other leg.
		ss.setEnd(srcSide, capture.HowEOF, nil, now)
		ss.tlsEnded(srcSide, srcConn)
		tap.End(ss.id, leg, byPeer(leg), false, now)
		closeWrite(dst, dstRaw)
		tap.End(ss.id, otherLeg(leg), byProxy(otherLeg(leg)), false, now)
	case ce != nil && ce.Read && isReset(ce.Err):
		ss.setEnd(srcSide, capture.HowReset, ce.Err, now)
		tap.End(ss.id, leg, byPeer(leg), true, now)
		tap.End(ss.id, otherLeg(leg), byProxy(otherLeg(leg)), true, now)
		ss.teardown(dstRaw, srcRaw, true)
	case ce != nil && ce.Read:
		how := capture.HowError
		if isTLSError(ce.Err) {
			how = capture.HowTLSError
		}
		ss.setEnd(srcSide, how, ce.Err, now)
		tap.End(ss.id, leg, byPeer(leg), false, now)
		tap.End(ss.id, otherLeg(leg), byProxy(otherLeg(leg)), false, now)
		ss.teardown(dstRaw, srcRaw, false)
	default:
		// Writing to the destination failed: that side is gone.
		how := capture.HowError
		var e error = err
		if ce != nil {
			e = ce.Err
		}
		if isReset(e) {
			how = capture.HowReset
		}
		ss.setEnd(dstSide, how, e, now)
		tap.End(ss.id, otherLeg(leg), byPeer(otherLeg(leg)), how == capture.HowReset, now)
		tap.End(ss.id, leg, byProxy(leg), how == capture.HowReset, now)
		ss.teardown(srcRaw, dstRaw, how == capture.HowReset)
	}
}

// byPeer and byProxy give Tap.End's fromServer for an ending sent on leg l
// by the peer (the client or the upstream) or by wstap: the upstream is the
// server side of its leg, wstap the server side of the client leg.
func byPeer(l capture.Leg) bool  { return l == capture.LegUpstream }
func byProxy(l capture.Leg) bool { return l == capture.LegClient }

func otherLeg(l capture.Leg) capture.Leg {
	if l == capture.LegClient {
		return capture.LegUpstream
	}
	return capture.LegClient
}

// teardown closes both legs; with rst the first is reset (mirroring a reset
// the proxy saw on the second).
func (ss *wsSession) teardown(first, second net.Conn, rst bool) {
	ss.mu.Lock()
	ss.torn = true
	ss.mu.Unlock()
	if rst {
		resetConn(first)
	} else {
		first.Close()
	}
	second.Close()
}

// closeWrite half-closes a leg: close_notify on TLS, then a TCP FIN.
func closeWrite(c, raw net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		tc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		tc.CloseWrite()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		tcp.CloseWrite()
		return
	}
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

func isTLSError(err error) bool {
	var rh tls.RecordHeaderError
	var ae tls.AlertError
	if errors.As(err, &rh) || errors.As(err, &ae) {
		return true
	}
	return strings.Contains(err.Error(), "tls: ")
}

// tlsEnded records how a TLS leg that reached EOF was closed.
func (ss *wsSession) tlsEnded(side string, c net.Conn) {
	sn := snifferOf(c)
	if sn == nil {
		return
	}
	end := sn.tlsEnd()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if l := ss.tlsLeg(side); l != nil {
		l.End = end
	}
}

// tlsLeg is the record's TLS description of a side; nil for plain TCP.
func (ss *wsSession) tlsLeg(side string) *capture.TLSLeg {
	if side == capture.SideClient {
		return ss.rec.TLS.Client
	}
	return ss.rec.TLS.Upstream
}
