// Package frames reads RFC 6455 frames as they pass through the relay: header
// parsing straight from the read buffer, control-frame decoding, close-code
// validity and the frame findings of docs/records.md. It owns no connection and no
// goroutine; the proxy feeds it the bytes it relays.
package frames

import (
	"encoding/binary"

	"github.com/gobwas/ws"
)

// ProtocolError is a frame-level violation that stops header parsing.
type ProtocolError string

func (e ProtocolError) Error() string { return string(e) }

// ErrLengthMSB: RFC 6455 §5.2 — "the most significant bit MUST be 0" in the
// 64-bit payload length. Such a header cannot be framed; the session becomes
// a byte tunnel.
const ErrLengthMSB = ProtocolError("64-bit payload length has its most significant bit set")

// headerLen returns the full length of the header that starts with b0, b1
// (RFC 6455 §5.2: 2 bytes, plus 2 or 8 of extended length, plus 4 of mask).
func headerLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// parseHeader decodes a complete header of len(b) == headerLen(b[1]) bytes.
// It is ws.ReadHeader over a byte slice, without the allocation that its
// io.Reader path costs on every frame; FuzzParseHeader checks the two agree.
func parseHeader(b []byte) (h ws.Header, err error) {
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] & 0x70) >> 4
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	p := 2
	switch l := b[1] & 0x7f; l {
	case 126:
		h.Length = int64(binary.BigEndian.Uint16(b[2:4]))
		p = 4
	case 127:
		u := binary.BigEndian.Uint64(b[2:10])
		if u&(1<<63) != 0 {
			return h, ErrLengthMSB
		}
		h.Length = int64(u)
		p = 10
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		copy(h.Mask[:], b[p:p+4])
	}
	return h, nil
}
