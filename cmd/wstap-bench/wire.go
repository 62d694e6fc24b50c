package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	"github.com/gobwas/ws"

	"github.com/wstap/wstap/internal/load"
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

// dialer opens the sessions of one job: load.Dialer (the load client of
// 'wstap load') with a read buffer of bufSize bytes per session.
type dialer struct {
	d       *load.Dialer
	err     error // why d could not be made
	bufSize int
}

// dial opens one session and returns the connection with a reader holding
// whatever followed the 101. seq picks the source address.
func (d *dialer) dial(ctx context.Context, seq int) (net.Conn, *bufio.Reader, error) {
	if d.err != nil {
		return nil, nil, d.err
	}
	conn, early, _, err := d.d.Dial(ctx, seq)
	if err != nil {
		return nil, nil, err
	}
	return conn, load.NewReader(conn, early, d.bufSize), nil
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
