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

// appendWriter is an io.Writer that appends to a reused slice, so a frame's
// header and payload leave in one write without an allocation.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// appendClientFrame appends one final frame with a fresh masking key, as
// every client frame must be masked (RFC 6455 section 5.3). hdr is scratch
// space of ws.MaxHeaderSize bytes.
func appendClientFrame(w *appendWriter, hdr []byte, op ws.OpCode, payload []byte) {
	var mask [4]byte
	binary.LittleEndian.PutUint32(mask[:], rand.Uint32())
	h := ws.Header{Fin: true, OpCode: op, Masked: true, Mask: mask, Length: int64(len(payload))}
	ws.WriteHeaderBuffer(w, h, hdr) // cannot fail: hdr is big enough and w never fails
	n := len(w.b)
	w.b = append(w.b, payload...)
	ws.Cipher(w.b[n:], mask, 0)
}

// closeCode is the code of a received close frame's payload: 1005 (No Status
// Received, RFC 6455 section 7.1.5) when it carries none.
func closeCode(payload []byte) int {
	if len(payload) < 2 {
		return int(ws.StatusNoStatusRcvd)
	}
	return int(binary.BigEndian.Uint16(payload))
}
