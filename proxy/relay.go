package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
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
	ss.srv.mem.started()
	var left atomic.Int32
	left.Store(2)
	end := func() {
		if left.Add(-1) == 0 {
			done()
		}
	}
	go func() {
		ss.pump(clientToUpstream, ss.up, cliR)
		end()
	}()
	go func() {
		ss.pump(upstreamToClient, ss.cli, upR)
		end()
	}()
}

// pump is one direction: src is read, dst is written.
func (ss *wsSession) pump(dir direction, dst io.Writer, src io.Reader) {
	d := ss.dirs[dir]
	tap := ss.srv.cfg.Tap
	fromServer := dir == upstreamToClient
	onChunk := func(b []byte) {
		d.now = time.Now()
		d.nowNs = d.now.UnixNano()
	}
	bufs := ss.srv.relayBuffers()
	bt, _ := tap.(capture.BufferTap)
	bufs.Done = func(b []byte, big *[]byte) bool {
		// A chunk read into a large buffer goes to the recorder as it is;
		// one in the small buffer, which the next read reuses, is copied.
		if big != nil && bt != nil {
			return bt.DataBuf(ss.id, capture.LegBoth, fromServer, d.now, b, big, bufs.Pool)
		}
		tap.Data(ss.id, capture.LegBoth, fromServer, d.now, b)
		return false
	}
	relayed, err := frames.Copy(dst, src, bufs, d.scanner, onChunk)
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
func (ss *wsSession) legs(side capture.Side) (conn, raw net.Conn) {
	if side == capture.SideUpstream {
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
	srcConn, srcRaw := ss.legs(src)
	dstConn, dstRaw := ss.legs(dst)
	srcLeg, dstLeg := legOf(src), legOf(dst)
	var ce *frames.CopyError
	errors.As(err, &ce)
	tap := ss.srv.cfg.Tap
	switch {
	case ce != nil && ce.Read && errors.Is(ce.Err, io.EOF):
		// The source sent FIN (or close_notify then FIN): half-close the other leg.
		ss.setEnd(src, capture.HowEOF, nil, now)
		ss.tlsEnded(src, srcConn)
		tap.End(ss.id, srcLeg, byPeer(srcLeg), false, now)
		closeWrite(dstConn, dstRaw)
		tap.End(ss.id, dstLeg, byProxy(dstLeg), false, now)
	case ce != nil && ce.Read:
		how := readEndHow(srcConn, ce.Err)
		rst := how == capture.HowReset
		ss.setEnd(src, how, ce.Err, now)
		tap.End(ss.id, srcLeg, byPeer(srcLeg), rst, now)
		tap.End(ss.id, dstLeg, byProxy(dstLeg), rst, now)
		ss.teardown(dstRaw, srcRaw, rst)
	default:
		// Writing to the destination failed: that side is gone.
		var e error = err
		if ce != nil {
			e = ce.Err
		}
		how := capture.HowError
		if isReset(e) {
			how = capture.HowReset
		}
		rst := how == capture.HowReset
		ss.setEnd(dst, how, e, now)
		tap.End(ss.id, dstLeg, byPeer(dstLeg), rst, now)
		tap.End(ss.id, srcLeg, byProxy(srcLeg), rst, now)
		ss.teardown(srcRaw, dstRaw, rst)
	}
}

// readEndHow classifies a read error other than a clean EOF.
func readEndHow(c net.Conn, err error) capture.How {
	switch {
	case isReset(err):
		return capture.HowReset
	case isTLSError(c, err):
		return capture.HowTLSError
	}
	return capture.HowError
}

// byPeer and byProxy give Tap.End's fromServer for an ending sent on leg l
// by the peer (the client or the upstream) or by wstap: the upstream is the
// server side of its leg, wstap the server side of the client leg.
func byPeer(l capture.Leg) bool  { return l == capture.LegUpstream }
func byProxy(l capture.Leg) bool { return l == capture.LegClient }

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

// tlsEnded records how a TLS leg that reached EOF was closed.
func (ss *wsSession) tlsEnded(side capture.Side, c net.Conn) {
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
func (ss *wsSession) tlsLeg(side capture.Side) *capture.TLSLeg {
	if side == capture.SideClient {
		return ss.rec.TLS.Client
	}
	return ss.rec.TLS.Upstream
}
