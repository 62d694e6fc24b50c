package proxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/wstap/wstap/capture/record"
	"github.com/wstap/wstap/internal/renegtls"
)

// TLS record content types (RFC 5246 §6.2.1, RFC 8446 §5.1).
const (
	recordHandshake = 22
	recordHeaderLen = 5
)

// How a TLS leg ended (docs/records.md, "tls"): the value of tls.*.end.
const (
	tlsEndCloseNotify = "close_notify" // a close_notify alert, then the TCP FIN
	tlsEndTCP         = "tcp"          // a bare TCP FIN, no close_notify
	tlsEndReset       = "reset"        // a TCP RST
)

// tlsSniffer sits under a leg's TLS connection and sees what the TLS stack
// does not report: how the TCP connection under it ended, and, on the client
// leg, a renegotiation the client asks for. In TLS 1.2 the record type stays
// in clear after the handshake, so a handshake record then is a new
// ClientHello from the client (RFC 5246 §7.4.1.1); TLS 1.3 hides every later
// record as application data and has no renegotiation (RFC 8446 §4.1.2).
// The upstream leg's renegotiations are reported by renegtls instead, one
// per HelloRequest, with their outcome. The sniffer reads nothing itself and
// allocates nothing per read; in noWait mode it reads nothing at all, which
// is how the relay asks the TLS stack for what it already holds (coalescer).
type tlsSniffer struct {
	net.Conn
	sock      io.ReadWriter // the socket: its rawIO, or Conn when it has none
	hdr       [recordHeaderLen]byte
	hn        int
	remaining int

	mu      sync.Mutex
	armed   bool // the first handshake is over
	leg     record.Side
	ss      *wsSession
	renegs  int   // client renegotiations seen
	readErr error // the first error of a read of the TCP connection

	// Owned by the goroutine that reads the leg (the handshake's, then
	// the relay's): see coalescer.
	noWait        bool // Read returns errNoWait instead of reading the socket
	lateHandshake bool // a handshake record came after the first handshake

	// While gather is set, Write appends to it instead of writing the
	// socket (see gatherer); wmu orders writes of other goroutines (an
	// alert the reading side sends) with the flush.
	wmu    sync.Mutex
	gather *[]byte
}

// Write writes p to the TCP connection, or appends it to the gathered
// records while a gatherer is writing.
func (t *tlsSniffer) Write(p []byte) (int, error) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.gather != nil {
		*t.gather = append(*t.gather, p...)
		return len(p), nil
	}
	return t.sock.Write(p)
}

// startGather makes Write append to buf until flushGather.
func (t *tlsSniffer) startGather(buf *[]byte) {
	t.wmu.Lock()
	t.gather = buf
	t.wmu.Unlock()
}

// flushGather writes what was gathered in one write and ends gathering.
func (t *tlsSniffer) flushGather() error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	b := *t.gather
	t.gather = nil
	_, err := t.sock.Write(b)
	return err
}

// errNoWait is what a tlsSniffer in noWait mode returns instead of reading
// the socket. It is a temporary net.Error, so the TLS stack keeps what it
// holds (a partial record stays buffered) and can be read again.
var errNoWait error = noWaitError{}

type noWaitError struct{}

func (noWaitError) Error() string   { return "no complete TLS record buffered" }
func (noWaitError) Timeout() bool   { return true }
func (noWaitError) Temporary() bool { return true }

func newSniffer(c net.Conn, leg record.Side) *tlsSniffer {
	t := &tlsSniffer{Conn: c, leg: leg, sock: c}
	if r := newRawIO(c); r != nil {
		t.sock = r
	}
	return t
}

func (t *tlsSniffer) Read(p []byte) (int, error) {
	if t.noWait {
		return 0, errNoWait
	}
	n, err := t.sock.Read(p)
	t.scan(p[:n])
	if err != nil {
		t.mu.Lock()
		if t.readErr == nil {
			t.readErr = err
		}
		t.mu.Unlock()
	}
	return n, err
}

// peerEnd says how the peer ended a TLS leg whose reads ended with err (nil:
// the TLS stack's io.EOF). crypto/tls and renegtls both return io.EOF for a
// close_notify and for a bare FIN at a record boundary (RFC 8446 §6.1 calls
// the latter a truncation, but popular servers send it); after a close_notify
// they stop reading, so the TCP connection under them reported no end yet.
// It returns "" when the peer's end is not known (a TLS error).
func (t *tlsSniffer) peerEnd(err error) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case isReset(err) || isReset(t.readErr):
		return tlsEndReset
	case errors.Is(t.readErr, io.EOF):
		return tlsEndTCP
	case err == nil && t.readErr == nil:
		return tlsEndCloseNotify
	}
	return ""
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

// session is the session the leg belongs to, nil before attach.
func (t *tlsSniffer) session() *wsSession {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ss
}

// handshakeRecord sees a handshake record. After the first handshake it
// is a renegotiation (TLS 1.2 only: TLS 1.3 sends every later record as
// application data), and the leg is not coalesced from then on. On the
// client leg it is a client's renegotiation: Go's TLS server answers its
// ClientHello with a fatal unexpected_message alert and ends the connection,
// so a leg has one at most, however many records its ClientHello spans. On
// the upstream leg it is a HelloRequest, which renegtls reports.
func (t *tlsSniffer) handshakeRecord() {
	t.mu.Lock()
	ss := t.ss
	if t.armed {
		t.lateHandshake = true
	}
	first := t.leg == record.SideClient && t.armed && ss != nil && t.renegs == 0
	if first {
		t.renegs++
	}
	t.mu.Unlock()
	if first {
		ss.renegotiation(record.SideClient, renegtls.Renegotiation{Start: time.Now(), Outcome: renegtls.Refused,
			Alert: "local error: tls: unexpected message"})
	}
}

// renegotiated is renegtls's hook: the upstream asked for a renegotiation
// and it ended as r says.
func (t *tlsSniffer) renegotiated(r renegtls.Renegotiation) {
	if ss := t.session(); ss != nil {
		ss.renegotiation(record.SideUpstream, r)
	}
}

// renegotiation records one renegotiation on a leg, asked for by that leg's
// peer: the upstream's is carried through (accepted, or failed with its
// alert or error); a client's is refused by wstap's TLS server.
func (ss *wsSession) renegotiation(leg record.Side, r renegtls.Renegotiation) {
	ss.mu.Lock()
	if l := ss.tlsLeg(leg); l != nil {
		l.Renegotiations++
		if r.Outcome == renegtls.Failed {
			l.RenegotiationsFailed++
		}
	}
	ss.mu.Unlock()
	errText := ""
	if r.Err != nil {
		errText = r.Err.Error()
	}
	ss.event(zerolog.WarnLevel, "tls-renegotiation", "leg", string(leg), "initiator", string(leg),
		"outcome", r.Outcome.String(), "alert", r.Alert, "error", errText,
		"duration_ms", round3(ms(r.Duration)), "held_records", r.HeldRecords, "held_bytes", r.HeldBytes,
		"at", r.Start.UTC().Format(time.RFC3339Nano))
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
