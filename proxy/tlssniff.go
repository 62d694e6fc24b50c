package proxy

import (
	"io"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/wstap/wstap/capture"
)

// TLS record content types (RFC 5246 §6.2.1, RFC 8446 §5.1).
const (
	recordHandshake = 22
	recordHeaderLen = 5
)

// tlsSniffer follows the TLS record headers a leg receives, under crypto/tls,
// to see what crypto/tls does not report: a renegotiation. In TLS 1.2 the
// record type stays in clear after the handshake, so a handshake record
// then is a HelloRequest from a server or a new ClientHello from a client
// (RFC 5246 §7.4.1.1); TLS 1.3 hides every later record as application data
// and has no renegotiation (RFC 8446 §4.1.2). It reads nothing itself and
// allocates nothing per read.
type tlsSniffer struct {
	net.Conn
	hdr       [recordHeaderLen]byte
	hn        int
	remaining int

	mu      sync.Mutex
	armed   bool // the first handshake is over
	leg     capture.Side
	ss      *wsSession
	refuses bool
	tcpEOF  bool // the TCP connection itself reached EOF
}

func newSniffer(c net.Conn, leg capture.Side, refuses bool) *tlsSniffer {
	return &tlsSniffer{Conn: c, leg: leg, refuses: refuses}
}

func (t *tlsSniffer) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	t.scan(p[:n])
	if err == io.EOF {
		t.mu.Lock()
		t.tcpEOF = true
		t.mu.Unlock()
	}
	return n, err
}

// tlsEnd says how a TLS leg whose reads ended with io.EOF was closed: by a
// close_notify alert (crypto/tls stops before the TCP FIN), or by a bare TCP
// FIN, which RFC 8446 §6.1 calls a truncation but popular servers send.
func (t *tlsSniffer) tlsEnd() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tcpEOF {
		return "tcp"
	}
	return "close_notify"
}

// scan walks record headers across reads.
func (t *tlsSniffer) scan(b []byte) {
	for len(b) > 0 {
		if t.remaining > 0 {
			k := min(t.remaining, len(b))
			t.remaining -= k
			b = b[k:]
			continue
		}
		k := copy(t.hdr[t.hn:], b)
		t.hn += k
		b = b[k:]
		if t.hn < recordHeaderLen {
			return
		}
		t.hn = 0
		t.remaining = int(t.hdr[3])<<8 | int(t.hdr[4])
		if t.hdr[0] == recordHandshake {
			t.handshakeRecord()
		}
	}
}

// arm marks the end of the first handshake.
func (t *tlsSniffer) arm() {
	t.mu.Lock()
	t.armed = true
	t.mu.Unlock()
}

// attach names the session later renegotiations belong to.
func (t *tlsSniffer) attach(ss *wsSession) {
	t.mu.Lock()
	t.ss = ss
	t.mu.Unlock()
}

func (t *tlsSniffer) handshakeRecord() {
	t.mu.Lock()
	armed, ss := t.armed, t.ss
	t.mu.Unlock()
	if !armed || ss == nil {
		return
	}
	ss.renegotiation(t.leg, t.refuses)
}

// renegotiation records a renegotiation on a leg: the upstream's is accepted
// as a client would (tls.RenegotiateFreelyAsClient); a client's is refused
// by Go's server with a no_renegotiation alert.
func (ss *wsSession) renegotiation(leg capture.Side, refused bool) {
	ss.mu.Lock()
	if l := ss.tlsLeg(leg); l != nil {
		l.Renegotiations++
	}
	ss.mu.Unlock()
	outcome := "accepted"
	if refused {
		outcome = "refused"
	}
	ss.event(zerolog.WarnLevel, "tls-renegotiation", "leg", string(leg), "outcome", outcome, "at", time.Now().UTC().Format(time.RFC3339Nano))
}

// snifferOf finds the sniffer under a leg's TLS connection.
func snifferOf(c net.Conn) *tlsSniffer {
	type netConner interface{ NetConn() net.Conn }
	if nc, ok := c.(netConner); ok {
		if sn, ok := nc.NetConn().(*tlsSniffer); ok {
			return sn
		}
	}
	return nil
}
