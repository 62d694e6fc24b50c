package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gobwas/ws"
)

// frameHead is the part of a WebSocket frame header the harness needs.
type frameHead struct {
	fin    bool
	op     ws.OpCode
	masked bool
	mask   [4]byte
	length int64
	size   int // header bytes on the wire
}

// errFrameTooLong stops a reader at an absurd frame length (a broken peer).
var errFrameTooLong = errors.New("frame longer than 1 GiB")

// readHead parses one frame header from br with Peek and Discard, so it
// allocates nothing.
func readHead(br *bufio.Reader) (frameHead, error) {
	var h frameHead
	b, err := br.Peek(2)
	if err != nil {
		return h, err
	}
	h.fin = b[0]&0x80 != 0
	h.op = ws.OpCode(b[0] & 0x0f)
	h.masked = b[1]&0x80 != 0
	n := int64(b[1] & 0x7f)
	h.size = 2
	switch n {
	case 126:
		h.size += 2
	case 127:
		h.size += 8
	}
	if h.masked {
		h.size += 4
	}
	if b, err = br.Peek(h.size); err != nil {
		return h, err
	}
	p := b[2:]
	switch n {
	case 126:
		n, p = int64(binary.BigEndian.Uint16(p)), p[2:]
	case 127:
		n, p = int64(binary.BigEndian.Uint64(p)), p[8:]
	}
	if n > 1<<30 {
		return h, errFrameTooLong
	}
	h.length = n
	if h.masked {
		copy(h.mask[:], p)
	}
	_, err = br.Discard(h.size)
	return h, err
}

// appendHead appends a frame header to dst.
func appendHead(dst []byte, fin bool, op ws.OpCode, mask *[4]byte, n int) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	var m byte
	if mask != nil {
		m = 0x80
	}
	switch {
	case n < 126:
		dst = append(dst, b0, m|byte(n))
	case n <= 0xffff:
		dst = append(dst, b0, m|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, b0, m|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if mask != nil {
		dst = append(dst, mask[:]...)
	}
	return dst
}

// appendClientFrame appends a masked client frame carrying payload.
func appendClientFrame(dst []byte, op ws.OpCode, mask [4]byte, payload []byte) []byte {
	dst = appendHead(dst, true, op, &mask, len(payload))
	start := len(dst)
	dst = append(dst, payload...)
	ws.Cipher(dst[start:], mask, 0)
	return dst
}

// dialer opens wss sessions to one URL, spreading source addresses.
type dialer struct {
	url     string
	tls     *tls.Config
	locals  []net.IP
	timeout time.Duration
	bufSize int // read buffer of each session; 0 means 64 KiB
}

// dial opens one session and returns the connection with a reader holding
// whatever followed the 101. seq picks the source address.
func (d *dialer) dial(ctx context.Context, seq int) (net.Conn, *bufio.Reader, error) {
	var local net.Addr
	if len(d.locals) > 0 {
		local = &net.TCPAddr{IP: d.locals[seq%len(d.locals)]}
	}
	wd := ws.Dialer{
		Timeout:   d.timeout,
		TLSConfig: d.tls,
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nd := net.Dialer{LocalAddr: local, Timeout: d.timeout}
			return nd.DialContext(ctx, network, addr)
		},
	}
	conn, br, _, err := wd.Dial(ctx, d.url)
	if err != nil {
		return nil, nil, err
	}
	size := d.bufSize
	if size == 0 {
		size = 64 << 10
	}
	if br == nil {
		return conn, bufio.NewReaderSize(conn, size), nil
	}
	// Keep what the dialer read past the 101, then read conn directly.
	return conn, bufio.NewReaderSize(&prefixReader{br: br, conn: conn}, size), nil
}

// prefixReader drains the dialer's buffer, then reads the connection.
type prefixReader struct {
	br   *bufio.Reader
	conn net.Conn
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if p.br != nil && p.br.Buffered() > 0 {
		return p.br.Read(b)
	}
	p.br = nil
	return p.conn.Read(b)
}

// failReason names why a dial failed, for the failures-by-reason counts.
func failReason(err error) string {
	var se ws.StatusError
	var ne net.Error
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("http-%d", int(se))
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case isTLSErr(err):
		return "tls"
	case errors.As(err, new(*net.OpError)):
		return "dial"
	}
	return "other"
}

func isTLSErr(err error) bool {
	var rh tls.RecordHeaderError
	var ae tls.AlertError
	var ve *tls.CertificateVerificationError
	return errors.As(err, &rh) || errors.As(err, &ae) || errors.As(err, &ve)
}
