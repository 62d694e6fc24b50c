package platform

import (
	"bytes"
	"math/rand/v2"

	"github.com/gobwas/ws"
)

// Faults a client may ask a platform with Config.Faults for, with the text
// message FaultPrefix + kind. Before it, the platform sends the echoes it
// still holds, so the client has read everything it was answered.
const (
	FaultPrefix    = "FAULT "
	FaultRST       = "rst"       // the platform resets the TCP connection (SO_LINGER 0), bypassing TLS
	FaultFIN       = "fin"       // the platform closes the connection (close_notify first on wss) without a close frame
	FaultMalformed = "malformed" // the platform sends a frame with a reserved opcode or RSV1 without an extension, then goes on
)

// faultAsked returns the kind of fault a text message asks for.
func (s *session) faultAsked(payload []byte) (string, bool) {
	if !s.p.cfg.Faults {
		return "", false
	}
	kind, ok := bytes.CutPrefix(payload, []byte(FaultPrefix))
	return string(kind), ok
}

// fault carries out the fault kind; done says the session is over. An
// unknown kind does nothing.
func (s *session) fault(kind string) (done bool) {
	if s.flush() != nil {
		return true
	}
	s.p.stats.faults.Add(1)
	switch kind {
	case FaultRST:
		s.raw.SetLinger(0)
		s.raw.Close()
		return true
	case FaultFIN:
		s.conn.Close()
		return true
	case FaultMalformed:
		// A reserved opcode (RFC 6455 section 5.2: 0x3-0x7 are reserved for
		// further non-control frames), or RSV1 set though no extension was
		// negotiated (section 5.2), one or the other at random.
		h := ws.Header{Fin: true, OpCode: ws.OpCode(0x3), Length: 4}
		if rand.IntN(2) == 0 {
			h = ws.Header{Fin: true, Rsv: ws.Rsv(true, false, false), OpCode: ws.OpText, Length: 4}
		}
		ws.WriteHeaderBuffer(&s.out, h, s.hdr[:])
		s.out.b = append(s.out.b, "oops"...)
		return s.flush() != nil
	}
	return false
}
