package proxy

import (
	"errors"
	"io"
	"net"
	"sync"
)

// coalescer reads a TLS leg for the relay. A TLS stack returns one record
// per Read, but one read of the socket often brings several (a client that
// pipelines small messages, an upstream echoing a burst): after a Read, the
// coalescer goes on reading what the TLS stack already holds, with the
// sniffer under it in noWait mode, until p is full or only a partial record
// (or nothing) is left. Those records then leave in one write, as HAProxy
// and nginx send them, instead of one write and one TLS record each.
//
// It never waits for the socket, so it holds no byte back: what it returns
// had already arrived. Record boundaries are not part of what the endpoints
// see (RFC 8446 §5.1: "message boundaries are not preserved"; RFC 5246
// §6.2.1 the same); the frames and their bytes are. A leg that renegotiates
// (TLS 1.2) is no longer coalesced: its new handshake must read the socket.
type coalescer struct {
	r  io.Reader // the leg's TLS connection, or a reader ending with it
	sn *tlsSniffer
}

// coalesced returns r reading c coalesced, or r itself when c is not TLS.
func coalesced(r io.Reader, c net.Conn) io.Reader {
	sn := snifferOf(c)
	if sn == nil {
		return r
	}
	return &coalescer{r: r, sn: sn}
}

func (c *coalescer) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil || n == 0 || n == len(p) || c.sn.lateHandshake {
		return n, err
	}
	c.sn.noWait = true
	for n < len(p) && err == nil {
		var m int
		m, err = c.r.Read(p[n:])
		n += m
		if m == 0 {
			break
		}
	}
	c.sn.noWait = false
	if errors.Is(err, errNoWait) {
		err = nil
	}
	return n, err
}

// maxRecordPlaintext is the most plaintext a TLS record carries (RFC 8446
// §5.1, RFC 5246 §6.2.1: 2^14 bytes).
const maxRecordPlaintext = 1 << 14

// gatherBuffers hold the records of one gathered write: a chunk of up to
// relayBigBuffer bytes and the overhead of its records.
var gatherBuffers = sync.Pool{New: func() any { b := make([]byte, 0, relayBigBuffer+4<<10); return &b }}

// gatherer writes a TLS leg for the relay. A TLS stack writes each record
// with a write of its own, so a chunk of more than 16 KiB costs a write per
// record: the gatherer lets the sniffer under it collect the records of one
// Write and send them in one write. The buffer is held only during the
// Write, so an idle session keeps none.
type gatherer struct {
	w  io.Writer // the leg's TLS connection
	sn *tlsSniffer
}

// gathered returns c writing through a gatherer, or c itself when it is
// not TLS.
func gathered(c net.Conn) io.Writer {
	sn := snifferOf(c)
	if sn == nil {
		return c
	}
	return &gatherer{w: c, sn: sn}
}

func (g *gatherer) Write(b []byte) (int, error) {
	if len(b) <= maxRecordPlaintext {
		return g.w.Write(b)
	}
	buf := gatherBuffers.Get().(*[]byte)
	*buf = (*buf)[:0]
	g.sn.startGather(buf)
	n, err := g.w.Write(b)
	if ferr := g.sn.flushGather(); ferr != nil && err == nil {
		// The TLS stack took every record; none may have left.
		n, err = 0, ferr
	}
	if cap(*buf) <= 2*relayBigBuffer {
		gatherBuffers.Put(buf)
	}
	return n, err
}
