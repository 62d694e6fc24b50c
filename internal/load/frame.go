package load

import (
	"encoding/binary"
	"math/rand/v2"
	"time"

	"github.com/gobwas/ws"
)

// Limits of one session's I/O.
const (
	// frameTimeout bounds reading the rest of a frame once its first byte came.
	frameTimeout = 10 * time.Second
	// writeTimeout bounds every write, so a server that stops reading cannot
	// hold a session forever.
	writeTimeout = 10 * time.Second
)

// A message's stamp: "wstap:" + 16 hex digits of nanoseconds since the run's
// start + ":" + 8 hex digits of the session id. An echo of it times the round
// trip; messages of other sessions (a chat room broadcasting) are ignored.
const (
	stampPrefix = "wstap:"
	stampSize   = len(stampPrefix) + 16 + 1 + 8
)

// putStamp writes the stamp for (sent, id) at the start of b.
func putStamp(b []byte, sent time.Duration, id uint32) {
	copy(b, stampPrefix)
	putHex(b[len(stampPrefix):len(stampPrefix)+16], uint64(sent))
	b[len(stampPrefix)+16] = ':'
	putHex(b[len(stampPrefix)+17:stampSize], uint64(id))
}

// parseStamp reads a stamp written by putStamp.
func parseStamp(b []byte) (sent time.Duration, id uint32, ok bool) {
	if len(b) < stampSize || string(b[:len(stampPrefix)]) != stampPrefix || b[len(stampPrefix)+16] != ':' {
		return 0, 0, false
	}
	ns, ok1 := parseHex(b[len(stampPrefix) : len(stampPrefix)+16])
	n, ok2 := parseHex(b[len(stampPrefix)+17 : stampSize])
	return time.Duration(ns), uint32(n), ok1 && ok2
}

const hexDigits = "0123456789abcdef"

// putHex writes v as len(b) hex digits, most significant first.
func putHex(b []byte, v uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

func parseHex(b []byte) (uint64, bool) {
	var v uint64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// Mask is a fresh masking key for one client frame (RFC 6455 section 5.3).
func Mask() [4]byte {
	var m [4]byte
	binary.LittleEndian.PutUint32(m[:], rand.Uint32())
	return m
}

// AppendClientFrame appends one final frame carrying payload, masked with
// mask as every client frame must be (RFC 6455 section 5.3), and returns
// the extended slice. It allocates nothing when dst has room.
func AppendClientFrame(dst []byte, op ws.OpCode, mask [4]byte, payload []byte) []byte {
	dst = appendHeader(dst, op, mask, len(payload))
	n := len(dst)
	dst = append(dst, payload...)
	ws.Cipher(dst[n:], mask, 0)
	return dst
}

// appendHeader appends the header of a final, masked frame of n payload
// bytes (RFC 6455 section 5.2: 7-bit length, or 126 and 16 bits, or 127 and
// 64 bits).
func appendHeader(dst []byte, op ws.OpCode, mask [4]byte, n int) []byte {
	b0 := 0x80 | byte(op)
	switch {
	case n < 126:
		dst = append(dst, b0, 0x80|byte(n))
	case n <= 0xffff:
		dst = append(dst, b0, 0x80|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, b0, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, mask[:]...)
}

// closeCode is the code of a received close frame's payload: 1005 (No Status
// Received, RFC 6455 section 7.1.5) when it carries none.
func closeCode(payload []byte) int {
	if len(payload) < 2 {
		return int(ws.StatusNoStatusRcvd)
	}
	return int(binary.BigEndian.Uint16(payload))
}
