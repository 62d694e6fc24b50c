package platform

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/gobwas/ws"
)

// Limits of one session.
const (
	// maxFrame is the largest frame payload the platform echoes; a bigger one
	// gets close 1009 (Message Too Big, RFC 6455 section 7.4.1).
	maxFrame = 1 << 20
	// frameTimeout bounds reading the rest of a frame once its first byte came.
	frameTimeout = 10 * time.Second
	// writeTimeout bounds every write, so a client that stops reading cannot
	// hold a session goroutine forever.
	writeTimeout = 10 * time.Second
)

// serve runs one connection: TLS, the upgrade, then the session.
func (p *Platform) serve(raw *net.TCPConn) {
	defer p.wg.Done()
	defer p.untrack(raw)
	defer raw.Close()

	var conn net.Conn = raw
	conn.SetDeadline(time.Now().Add(handshakeTimeout))
	if p.tls != nil {
		tc := tls.Server(raw, p.tls)
		if err := tc.Handshake(); err != nil {
			p.stats.rejected.Add(1)
			return
		}
		conn = tc
	}
	// The session is counted against the cap before its 101 leaves, so a
	// client that saw N 101s knows the platform counts N sessions.
	admitted := false
	up := ws.Upgrader{
		Protocol: func(offered []byte) bool { return string(offered) == Subprotocol },
		OnBeforeUpgrade: func() (ws.HandshakeHeader, error) {
			admitted = p.stats.admit(p.cfg.Cap)
			return nil, nil
		},
	}
	if _, err := up.Upgrade(conn); err != nil {
		// The upgrader has already written the 4xx answer.
		p.stats.rejected.Add(1)
		if admitted {
			p.stats.current.Add(-1)
		}
		return
	}
	conn.SetDeadline(time.Time{})
	p.stats.upgraded.Add(1)
	if !admitted {
		p.stats.capDrops.Add(1)
		p.reset(raw)
		return
	}
	defer p.stats.current.Add(-1)
	s := &session{p: p, conn: conn, raw: raw, br: bufio.NewReaderSize(conn, p.cfg.ReadBuffer)}
	s.run()
}

// reset waits CapDelay, then ends raw with an RST (SO_LINGER 0), bypassing TLS.
func (p *Platform) reset(raw *net.TCPConn) {
	t := time.NewTimer(p.cfg.CapDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.done:
	}
	raw.SetLinger(0)
	raw.Close()
}

// session is one upgraded connection. All its I/O happens in run's goroutine:
// read deadlines interleave waiting for the client with the platform's pings
// and its idle timeout.
type session struct {
	p    *Platform
	conn net.Conn // the TLS conn on wss
	raw  *net.TCPConn
	br   *bufio.Reader
	hdr  [ws.MaxHeaderSize]byte
	buf  []byte // the last frame's payload
	out  appendWriter
	ping uint64
}

func (s *session) run() {
	cfg := s.p.cfg
	now := time.Now()
	var idleAt, pingAt time.Time
	if cfg.IdleTimeout > 0 {
		idleAt = now.Add(cfg.IdleTimeout)
	}
	if cfg.PingEvery > 0 {
		pingAt = now.Add(cfg.PingEvery)
	}
	for {
		// Nothing buffered: send the pending echoes, then wait for the
		// client, the next ping or the idle timeout. While the client's
		// frames are buffered, none of that is due: it is not idle.
		if s.br.Buffered() == 0 {
			if s.flush() != nil {
				s.p.stats.clientGone.Add(1)
				return
			}
			s.conn.SetReadDeadline(earliest(idleAt, pingAt))
			_, err := s.br.Peek(1)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				now := time.Now()
				if !idleAt.IsZero() && !now.Before(idleAt) {
					// FIN without a close frame; on wss tls.Conn.Close sends
					// close_notify first, as a TLS terminator would.
					s.p.stats.idleDrops.Add(1)
					s.conn.Close()
					return
				}
				if !pingAt.IsZero() && !now.Before(pingAt) {
					pingAt = now.Add(cfg.PingEvery)
					if s.sendPing() != nil {
						s.p.stats.clientGone.Add(1)
						return
					}
				}
				continue
			}
			if err != nil {
				s.p.stats.clientGone.Add(1)
				return
			}
		}
		h, payload, err := s.readFrame()
		if err != nil {
			s.p.stats.clientGone.Add(1)
			return
		}
		if h.OpCode != ws.OpPong && !idleAt.IsZero() {
			idleAt = time.Now().Add(cfg.IdleTimeout)
		}
		switch h.OpCode {
		case ws.OpPong:
		case ws.OpPing:
			err = s.queue(ws.OpPong, true, payload)
		case ws.OpClose:
			s.closeBack(payload)
			return
		case ws.OpText:
			if kind, ok := s.faultAsked(payload); ok {
				if s.fault(kind) {
					return
				}
				continue
			}
			err = s.queue(h.OpCode, h.Fin, payload)
		default: // data and continuation frames are echoed as they came
			err = s.queue(h.OpCode, h.Fin, payload)
		}
		if err != nil {
			s.p.stats.clientGone.Add(1)
			return
		}
	}
}

// readFrame reads one frame and unmasks its payload into the session buffer.
// A payload over maxFrame gets close 1009 and an error.
func (s *session) readFrame() (ws.Header, []byte, error) {
	if err := s.ready(ws.MaxHeaderSize); err != nil {
		return ws.Header{}, nil, err
	}
	h, err := ws.ReadHeaderBuffer(s.br, s.hdr[:])
	if err != nil {
		return h, nil, err
	}
	if h.Length > maxFrame {
		s.write(ws.OpClose, true, ws.NewCloseFrameBody(ws.StatusMessageTooBig, ""))
		return h, nil, errors.New("frame of " + strconv.FormatInt(h.Length, 10) + " bytes over the platform's limit")
	}
	if int64(cap(s.buf)) < h.Length {
		s.buf = make([]byte, h.Length)
	}
	payload := s.buf[:h.Length]
	if err := s.ready(int(h.Length)); err != nil {
		return h, nil, err
	}
	if _, err := io.ReadFull(s.br, payload); err != nil {
		return h, nil, err
	}
	if h.Masked {
		ws.Cipher(payload, h.Mask, 0)
	}
	return h, payload, nil
}

// closeBack answers the client's close frame with the same code (or an
// empty close for an empty one), then ends the connection: a clean close.
func (s *session) closeBack(payload []byte) {
	var body [2]byte
	reply := body[:0]
	if len(payload) >= 2 {
		code := ws.StatusCode(binary.BigEndian.Uint16(payload))
		if ws.CheckCloseFrameData(code, "") != nil {
			code = ws.StatusProtocolError
		}
		binary.BigEndian.PutUint16(body[:], uint16(code))
		reply = body[:]
	}
	if s.write(ws.OpClose, true, reply) == nil {
		s.p.stats.cleanCloses.Add(1)
	}
	s.conn.Close()
}

// sendPing sends the platform's ping; its payload is a counter.
func (s *session) sendPing() error {
	s.ping++
	var b [20]byte
	if err := s.write(ws.OpPing, true, strconv.AppendUint(b[:0], s.ping, 10)); err != nil {
		return err
	}
	s.p.stats.pingsSent.Add(1)
	return nil
}

// maxPending is the most output the session holds back before it writes.
const maxPending = 256 << 10

// queue adds one unmasked frame (a server's frames are never masked,
// RFC 6455 section 5.1) to the pending output. Echoes of frames that came
// in one read leave in one write, as a server that batches its writes
// sends them; a client's pipelined messages are not answered one TLS record
// each.
func (s *session) queue(op ws.OpCode, fin bool, payload []byte) error {
	h := ws.Header{Fin: fin, OpCode: op, Length: int64(len(payload))}
	if err := ws.WriteHeaderBuffer(&s.out, h, s.hdr[:]); err != nil {
		return err
	}
	s.out.b = append(s.out.b, payload...)
	if len(s.out.b) >= maxPending {
		return s.flush()
	}
	return nil
}

// write sends one frame, and whatever was pending before it, now.
func (s *session) write(op ws.OpCode, fin bool, payload []byte) error {
	if err := s.queue(op, fin, payload); err != nil {
		return err
	}
	return s.flush()
}

// ready prepares a read of need bytes of a frame that has begun. When
// fewer are buffered, the read may wait for the client: the pending output
// goes first (the client may be waiting for it) and frameTimeout bounds the
// wait. A read from the buffer sets no deadline, which is what lets
// pipelined frames be echoed at the client's pace.
func (s *session) ready(need int) error {
	if s.br.Buffered() >= need {
		return nil
	}
	if err := s.flush(); err != nil {
		return err
	}
	return s.conn.SetReadDeadline(time.Now().Add(frameTimeout))
}

// flush writes the pending output in one write.
func (s *session) flush() error {
	if len(s.out.b) == 0 {
		return nil
	}
	s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := s.conn.Write(s.out.b)
	s.out.b = s.out.b[:0]
	return err
}

// appendWriter is an io.Writer that appends to a reused slice, so a frame's
// header and payload leave in one write without an allocation.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// earliest returns the earlier of two times, ignoring zero ones.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}
