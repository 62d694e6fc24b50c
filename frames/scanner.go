package frames

import (
	"strconv"

	"github.com/gobwas/ws"
)

// Rule ids of the frame findings (docs/records.md, "Findings").
const (
	RuleControlTooLong    = "frame-control-too-long"
	RuleControlFragmented = "frame-control-fragmented"
	RuleUnmaskedClient    = "frame-unmasked-client"
	RuleMaskedServer      = "frame-masked-server"
	RuleReservedOpcode    = "frame-reserved-opcode"
	RuleRsvNoExtension    = "frame-rsv-without-extension"
	RuleCloseInvalid      = "frame-close-invalid"
	RuleAfterClose        = "frame-after-close"
	RuleHeaderUnparsable  = "frame-header-unparsable"
	// RuleFragmentOrder: a continuation with no message open, or a new data
	// frame while a fragmented message is still open (§5.4).
	RuleFragmentOrder = "frame-fragment-order"
)

// Info is the frame a Scanner is in. It is owned by the Scanner and reused;
// observers copy what they keep.
type Info struct {
	ws.Header
	// HeaderLen is the number of wire bytes of the header.
	HeaderLen int
	// FirstOfMessage is true for a text or binary frame (it opens a message);
	// false for continuations and control frames.
	FirstOfMessage bool
	// MessageOpCode is the opcode of the message a continuation belongs to.
	MessageOpCode ws.OpCode
}

// Observer receives what a Scanner finds. Methods run on the relay's
// goroutine: they must not block and should not allocate.
type Observer interface {
	// Frame is called once the header of a frame is complete.
	Frame(f *Info)
	// Control is called when a control frame's payload is complete, with the
	// unmasked payload (at most 125 bytes; longer payloads are cut to 125).
	Control(f *Info, payload []byte)
	// Data is called when a data frame ends, with up to Scanner.DataPrefix
	// unmasked bytes of its payload (nil when DataPrefix is 0).
	Data(f *Info, prefix []byte)
	// Finding reports a frame that breaks RFC 6455; it is still relayed.
	Finding(rule, detail string)
}

// Scanner follows the frame boundaries of one direction of a WebSocket
// connection across arbitrary read chunks. It never copies payload except
// control payloads and the optional data prefix, and never allocates the
// declared length.
type Scanner struct {
	obs Observer
	// FromClient is true for the client→server direction: its frames must be
	// masked (§5.1) and server frames must not.
	fromClient bool
	// rsvAllowed are the RSV bits an extension negotiated (§5.2); RSV1 for
	// permessage-deflate (RFC 7692 §6).
	rsvAllowed byte
	// DataPrefix is how many payload bytes of each data frame to keep for
	// Observer.Data (heartbeat and app-close matching). 0 keeps none.
	DataPrefix int

	hdr       [ws.MaxHeaderSize]byte
	hn, hneed int
	remaining int64
	cur       Info
	pay       [ws.MaxControlFramePayloadSize]byte
	pn        int
	payOff    int64 // payload bytes seen of the current frame (mask offset)
	prefix    []byte

	inMessage bool
	msgOp     ws.OpCode
	closed    bool
	tunnel    bool
	tunnelN   int64
}

// NewScanner returns a Scanner for one direction.
func NewScanner(obs Observer, fromClient bool, rsvAllowed byte) *Scanner {
	return &Scanner{obs: obs, fromClient: fromClient, rsvAllowed: rsvAllowed}
}

// Tunnel reports whether the scanner gave up on framing (unparsable header)
// and how many bytes it has passed through since.
func (s *Scanner) Tunnel() (bool, int64) { return s.tunnel, s.tunnelN }

// Feed scans one chunk of relayed bytes.
func (s *Scanner) Feed(b []byte) {
	for len(b) > 0 {
		if s.tunnel {
			s.tunnelN += int64(len(b))
			return
		}
		if s.hneed == 0 || s.hn < s.hneed {
			b = s.feedHeader(b)
			continue
		}
		// Inside a payload.
		n := int64(len(b))
		if n > s.remaining {
			n = s.remaining
		}
		s.payload(b[:n])
		s.remaining -= n
		b = b[n:]
		if s.remaining == 0 {
			s.endFrame()
		}
	}
}

// feedHeader collects header bytes; once complete it starts the frame.
func (s *Scanner) feedHeader(b []byte) []byte {
	if s.hn == 0 && len(b) >= 2 {
		// The whole header is in this read (the usual case): parse it in place.
		if n := headerLen(b[1]); len(b) >= n {
			s.hn, s.hneed = n, n
			return s.header(b[:n], b[n:])
		}
	}
	if s.hn < 2 {
		k := copy(s.hdr[s.hn:2], b)
		s.hn += k
		b = b[k:]
		if s.hn < 2 {
			return b
		}
		s.hneed = headerLen(s.hdr[1])
	}
	k := copy(s.hdr[s.hn:s.hneed], b)
	s.hn += k
	b = b[k:]
	if s.hn < s.hneed {
		return b
	}
	return s.header(s.hdr[:s.hneed], b)
}

// header starts the frame whose complete header is hdr; rest follows it.
func (s *Scanner) header(hdr, b []byte) []byte {
	h, err := parseHeader(hdr)
	if err != nil {
		s.tunnel = true
		s.tunnelN = int64(len(b))
		s.obs.Finding(RuleHeaderUnparsable, err.Error()+"; the rest of this direction is relayed as bytes")
		return nil
	}
	s.startFrame(h)
	if s.remaining == 0 {
		s.endFrame()
	}
	return b
}

func (s *Scanner) startFrame(h ws.Header) {
	s.cur = Info{Header: h, HeaderLen: s.hneed}
	s.remaining = h.Length
	s.pn, s.payOff = 0, 0
	s.prefix = s.prefix[:0]
	op := h.OpCode
	if s.closed {
		s.obs.Finding(RuleAfterClose, "frame with opcode "+opName(op)+" after this side's close frame (§5.5.1)")
	}
	if op.IsReserved() {
		s.obs.Finding(RuleReservedOpcode, "reserved opcode "+opName(op)+" (§5.2)")
	}
	if h.Rsv&^s.rsvAllowed != 0 {
		s.obs.Finding(RuleRsvNoExtension, "RSV bits "+rsvString(h.Rsv)+" set with no extension negotiated that defines them (§5.2)")
	}
	if s.fromClient && !h.Masked {
		s.obs.Finding(RuleUnmaskedClient, "client frame (opcode "+opName(op)+") is not masked (§5.1)")
	}
	if !s.fromClient && h.Masked {
		s.obs.Finding(RuleMaskedServer, "server frame (opcode "+opName(op)+") is masked (§5.1)")
	}
	switch {
	case op.IsControl():
		if h.Length > ws.MaxControlFramePayloadSize {
			s.obs.Finding(RuleControlTooLong, "control frame "+opName(op)+" declares "+i64toa(h.Length)+" payload bytes, more than 125 (§5.5)")
		}
		if !h.Fin {
			s.obs.Finding(RuleControlFragmented, "control frame "+opName(op)+" without FIN: control frames must not be fragmented (§5.5)")
		}
		if op == ws.OpClose {
			s.closed = true
		}
	case op == ws.OpContinuation:
		if !s.inMessage {
			s.obs.Finding(RuleFragmentOrder, "continuation frame with no fragmented message open (§5.4)")
		}
		s.cur.MessageOpCode = s.msgOp
		if h.Fin {
			s.inMessage = false
		}
	case op == ws.OpText || op == ws.OpBinary:
		if s.inMessage {
			s.obs.Finding(RuleFragmentOrder, "new "+opName(op)+" frame while a fragmented message is still open (§5.4)")
		}
		s.cur.FirstOfMessage = true
		s.cur.MessageOpCode = op
		s.msgOp = op
		s.inMessage = !h.Fin
	}
	s.obs.Frame(&s.cur)
}

// payload handles the payload bytes of the current frame in this chunk.
func (s *Scanner) payload(p []byte) {
	switch {
	case s.cur.OpCode.IsControl():
		if room := len(s.pay) - s.pn; room > 0 {
			k := copy(s.pay[s.pn:], p)
			if s.cur.Masked {
				ws.Cipher(s.pay[s.pn:s.pn+k], s.cur.Mask, int(s.payOff))
			}
			s.pn += k
		}
	case s.DataPrefix > 0 && len(s.prefix) < s.DataPrefix:
		k := s.DataPrefix - len(s.prefix)
		if k > len(p) {
			k = len(p)
		}
		start := len(s.prefix)
		s.prefix = append(s.prefix, p[:k]...)
		if s.cur.Masked {
			ws.Cipher(s.prefix[start:], s.cur.Mask, int(s.payOff))
		}
	}
	s.payOff += int64(len(p))
}

func (s *Scanner) endFrame() {
	s.hn, s.hneed = 0, 0
	op := s.cur.OpCode
	switch {
	case op.IsControl():
		p := s.pay[:s.pn]
		if op == ws.OpClose {
			if ci := DecodeClose(p); ci.Problem != "" {
				s.obs.Finding(RuleCloseInvalid, ci.Problem)
			}
		}
		s.obs.Control(&s.cur, p)
	case op.IsData() || op == ws.OpContinuation:
		if s.DataPrefix > 0 {
			s.obs.Data(&s.cur, s.prefix)
		} else {
			s.obs.Data(&s.cur, nil)
		}
	}
}

func opName(op ws.OpCode) string {
	switch op {
	case ws.OpContinuation:
		return "continuation"
	case ws.OpText:
		return "text"
	case ws.OpBinary:
		return "binary"
	case ws.OpClose:
		return "close"
	case ws.OpPing:
		return "ping"
	case ws.OpPong:
		return "pong"
	}
	return "0x" + string("0123456789abcdef"[op&0xf])
}

func rsvString(rsv byte) string {
	b := []byte("RSV")
	for i, bit := range []byte{4, 2, 1} {
		if rsv&bit != 0 {
			b = append(b, byte('1'+i))
		}
	}
	return string(b)
}

func i64toa(n int64) string { return strconv.FormatInt(n, 10) }
