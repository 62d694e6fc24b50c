package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/gobwas/ws"
)

// session is one open WebSocket session. All its I/O happens in one
// goroutine: read deadlines interleave waiting for the server with the
// client's own pings, messages and the end of the hold.
type session struct {
	r      *runner
	id     uint32
	conn   net.Conn
	br     *bufio.Reader
	opened time.Time

	hdr  [ws.MaxHeaderSize]byte
	in   []byte // the last received payload
	msg  []byte // the message sent, its stamp rewritten each time
	out  []byte // the frame being sent
	rtts []time.Duration

	// the outcome
	closing bool      // the client sent its close frame
	code    int       // close code received; 0 when no close frame came
	how     string    // how the connection ended when no close frame came
	endedAt time.Time // when it ended
}

func newSession(r *runner, id uint32, conn net.Conn, early []byte) *session {
	p := r.p
	s := &session{
		r:      r,
		id:     id,
		conn:   conn,
		br:     NewReader(conn, early, min(max(p.MessageSize+ws.MaxHeaderSize, 512), 4096)),
		opened: time.Now(),
		in:     make([]byte, max(p.MessageSize, 125)),
	}
	if p.MessageEvery > 0 {
		s.msg = bytes.Repeat([]byte{'x'}, p.MessageSize)
		s.out = make([]byte, 0, p.MessageSize+ws.MaxHeaderSize)
		if p.Hold > 0 {
			s.rtts = make([]time.Duration, 0, min(p.Hold/p.MessageEvery+1, 1024))
		}
	}
	return s
}

// hold runs the session until its hold is over, ctx ends or the server ends
// it, then closes it.
func (s *session) hold(ctx context.Context) {
	p := s.r.p
	end := s.opened.Add(p.Hold)
	var pingAt, msgAt time.Time
	if p.Ping > 0 {
		pingAt = s.opened.Add(p.Ping)
	}
	if p.MessageEvery > 0 {
		msgAt = s.opened.Add(p.MessageEvery)
	}
	for {
		now := time.Now()
		if ctx.Err() != nil || !now.Before(end) {
			s.close()
			return
		}
		if !pingAt.IsZero() && !now.Before(pingAt) {
			pingAt = now.Add(p.Ping)
			if err := s.write(ws.OpPing, nil); err != nil {
				s.writeFailed(err)
				return
			}
			s.r.pingsSent.Add(1)
		}
		if !msgAt.IsZero() && !now.Before(msgAt) {
			msgAt = now.Add(p.MessageEvery)
			putStamp(s.msg, time.Since(s.r.start), s.id)
			if err := s.write(ws.OpText, s.msg); err != nil {
				s.writeFailed(err)
				return
			}
			s.r.messagesSent.Add(1)
		}

		s.conn.SetReadDeadline(earliest(end, pingAt, msgAt))
		if ctx.Err() != nil {
			continue // wakeAll may have come before this deadline
		}
		h, payload, err := s.next()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			s.lost(err)
			return
		}
		switch h.OpCode {
		case ws.OpPing:
			s.r.serverPings.Add(1)
			if err := s.write(ws.OpPong, payload); err != nil {
				s.writeFailed(err)
				return
			}
			s.r.pongsSent.Add(1)
		case ws.OpClose:
			s.closedByServer(payload)
			return
		case ws.OpText, ws.OpBinary:
			s.timeEcho(payload)
		}
	}
}

// next waits, until the read deadline already set, for a frame to start,
// then reads it whole within frameTimeout. A deadline error means no frame
// started: nothing was consumed.
func (s *session) next() (ws.Header, []byte, error) {
	if _, err := s.br.Peek(1); err != nil {
		return ws.Header{}, nil, err
	}
	s.conn.SetReadDeadline(time.Now().Add(frameTimeout))
	h, err := ws.ReadHeaderBuffer(s.br, s.hdr[:])
	if err != nil {
		return h, nil, cutOff(err)
	}
	if h.Length > int64(len(s.in)) {
		// Not ours: a message bigger than any we send. Skip it.
		_, err := s.br.Discard(int(min(h.Length, 1<<31)))
		return h, nil, cutOff(err)
	}
	payload := s.in[:h.Length]
	if _, err := io.ReadFull(s.br, payload); err != nil {
		return h, nil, cutOff(err)
	}
	if h.Masked { // a server must not mask, but be lenient
		ws.Cipher(payload, h.Mask, 0)
	}
	return h, payload, nil
}

// errFrameCutOff is a frame that started but did not finish within frameTimeout.
var errFrameCutOff = errors.New("frame cut off")

// cutOff turns a deadline in the middle of a frame into errFrameCutOff, so
// it is not mistaken for the quiet deadline of next.
func cutOff(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return errFrameCutOff
	}
	return err
}

// timeEcho records the round trip of an echo of this session's message.
func (s *session) timeEcho(payload []byte) {
	sent, id, ok := parseStamp(payload)
	if !ok || id != s.id {
		return
	}
	if rtt := time.Since(s.r.start) - sent; rtt >= 0 {
		s.rtts = append(s.rtts, rtt)
		s.r.echoes.Add(1)
	}
}

// close sends close 1000 and waits for the server's close frame.
func (s *session) close() {
	s.closing = true
	if err := s.write(ws.OpClose, []byte{0x03, 0xe8}); err != nil { // 1000 Normal Closure
		s.writeFailed(err)
		return
	}
	s.awaitClose(time.Now().Add(s.r.p.CloseTimeout), nil)
}

// closedByServer answers the server's close frame with the same code, as
// RFC 6455 section 5.5.1 asks, and waits for the server to end TCP.
func (s *session) closedByServer(payload []byte) {
	s.code = closeCode(payload)
	s.endedAt = time.Now()
	reply := payload[:min(len(payload), 2)]
	if len(reply) == 2 && ws.CheckCloseFrameData(ws.StatusCode(s.code), "") != nil {
		reply = []byte{0x03, 0xe8}
	}
	if s.write(ws.OpClose, reply) == nil {
		s.waitEOF()
	}
}

// awaitClose reads, timing echoes and ignoring pings, until the server's close frame,
// the end of the connection or the deadline. cause, when not nil, is the
// write error that made the session stop.
func (s *session) awaitClose(deadline time.Time, cause error) {
	for {
		s.conn.SetReadDeadline(deadline)
		h, payload, err := s.next()
		switch {
		case err == nil && h.OpCode == ws.OpClose:
			s.code = closeCode(payload)
			s.endedAt = time.Now()
			s.waitEOF()
			return
		case err == nil:
			if h.OpCode == ws.OpText || h.OpCode == ws.OpBinary {
				s.timeEcho(payload) // an echo still on its way when the hold ended
			}
			continue
		case cause != nil && How(err) != "reset":
			s.lost(cause)
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			s.how, s.endedAt = "timeout", time.Now()
			return
		default:
			s.lost(err)
			return
		}
	}
}

// writeFailed looks for a close frame the server may have sent before the
// connection broke, and otherwise records how it broke.
func (s *session) writeFailed(err error) {
	s.awaitClose(time.Now().Add(200*time.Millisecond), err)
}

// lost records a session that ended without a close frame.
func (s *session) lost(err error) {
	s.how, s.endedAt = How(err), time.Now()
}

// waitEOF gives the server a moment to end TCP first, as RFC 6455 section
// 7.1.1 prefers (so TIME_WAIT stays on the server).
func (s *session) waitEOF() {
	s.conn.SetReadDeadline(time.Now().Add(time.Second))
	s.br.WriteTo(io.Discard)
}

// write sends one masked frame in one write.
func (s *session) write(op ws.OpCode, payload []byte) error {
	s.out = AppendClientFrame(s.out[:0], op, Mask(), payload)
	s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := s.conn.Write(s.out)
	return err
}

// How names the way a connection ended from the error that showed it:
// "eof", "reset", "timeout" or "error". It is Drop.How, and what the bench
// and the soak call their sessions' ends.
func How(err error) string {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		// EPIPE: the peer had sent a FIN before it reset our write.
		return "eof"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, errFrameCutOff):
		return "timeout"
	}
	return "error"
}

// earliest returns the earliest of times, ignoring zero ones.
func earliest(times ...time.Time) time.Time {
	var e time.Time
	for _, t := range times {
		if !t.IsZero() && (e.IsZero() || t.Before(e)) {
			e = t
		}
	}
	return e
}
