// wstap patch: this file is not part of Go's crypto/tls; PATCH.md lists the
// hunks in conn.go that call it.

package tls

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"time"
)

// RenegotiationOutcome is how a server-initiated renegotiation ended.
type RenegotiationOutcome int

const (
	// RenegotiationAccepted: the new handshake completed.
	RenegotiationAccepted RenegotiationOutcome = iota
	// RenegotiationRefused: Config.Renegotiation did not allow it, and the
	// client answered the HelloRequest with a no_renegotiation alert
	// (RFC 5246, Section 7.4.1.1).
	RenegotiationRefused
	// RenegotiationFailed: the new handshake ended in an error.
	RenegotiationFailed
)

// String returns "accepted", "refused" or "failed".
func (o RenegotiationOutcome) String() string {
	switch o {
	case RenegotiationAccepted:
		return "accepted"
	case RenegotiationRefused:
		return "refused"
	case RenegotiationFailed:
		return "failed"
	}
	return fmt.Sprintf("RenegotiationOutcome(%d)", int(o))
}

// Renegotiation reports one HelloRequest a server sent after the first
// handshake (TLS 1.2 and earlier; TLS 1.3 has no renegotiation).
type Renegotiation struct {
	Start    time.Time     // when the HelloRequest was read
	Duration time.Duration // until the outcome was known
	Outcome  RenegotiationOutcome
	// Err is what ended a refused or failed renegotiation, nil when accepted.
	Err error
	// Alert is the alert that ended it, "local error: tls: bad certificate"
	// (sent) or "remote error: tls: handshake failure" (received); "" when
	// no alert was involved.
	Alert string
	// HeldRecords and HeldBytes count the application data the server sent
	// under the old cipher spec while the new handshake ran (RFC 5246,
	// Sections 7.1 and 7.4.1.1): crypto/tls fails with unexpected_message on
	// the first such record; this copy hands it to Read after the handshake.
	HeldRecords int
	HeldBytes   int
}

// maxHeld bounds the application data held during one renegotiation. A
// server stops sending once it reads the client's ClientHello (OpenSSL's
// window), so this is about one round trip of traffic; a server that keeps
// sending and never answers ends the connection here instead of in memory.
const maxHeld = 16 << 20

// renegotiation is the patch's state in Conn; it is guarded by c.in, like
// the rest of the input side.
type renegotiation struct {
	hook   func(Renegotiation)
	active bool         // a renegotiation runs; the server's ChangeCipherSpec has not come
	held   bytes.Buffer // application data read while active, for Read
	cur    Renegotiation
}

// SetRenegotiationHook sets f to be called, on the goroutine in Read, once
// per HelloRequest the server sends after the first handshake, when its
// outcome is known. Call it before the first Read. f may call
// ConnectionState but not Read: the input side is locked while it runs.
func (c *Conn) SetRenegotiationHook(f func(Renegotiation)) {
	c.reneg.hook = f
}

// holdRenegotiationData keeps a record of application data that arrived
// while a renegotiation runs: RFC 5246, Section 7.1 keeps the old cipher spec
// in effect until the server's ChangeCipherSpec, and Section 7.4.1.1 lets
// the server go on sending after its HelloRequest. c.input must stay empty
// during a handshake, so the data waits in c.reneg.held, in order.
func (c *Conn) holdRenegotiationData(data []byte) error {
	if len(data) == 0 {
		return c.retryReadRecord(false)
	}
	if c.reneg.held.Len()+len(data) > maxHeld {
		c.sendAlert(alertInternalError)
		return c.in.setErrorLocked(fmt.Errorf("tls: more than %d bytes of application data during a renegotiation", maxHeld))
	}
	c.reneg.held.Write(data)
	c.reneg.cur.HeldRecords++
	c.reneg.cur.HeldBytes += len(data)
	return nil
}

// renegotiationDone reports the renegotiation that started at start and
// ended with *err, and closes the window for held data.
func (c *Conn) renegotiationDone(start time.Time, err *error) {
	r := c.reneg.cur
	c.reneg.cur = Renegotiation{}
	c.reneg.active = false
	if c.reneg.hook == nil {
		return
	}
	r.Start, r.Duration, r.Err = start, time.Since(start), *err
	var op *net.OpError
	if errors.As(r.Err, &op) && (op.Op == "local error" || op.Op == "remote error") {
		r.Alert = op.Error()
	} else if r.Err != nil {
		r.Alert = c.sentAlert()
	}
	switch {
	case r.Err == nil:
		r.Outcome = RenegotiationAccepted
	case op != nil && op.Op == "local error" && op.Err == alertNoRenegotiation:
		r.Outcome = RenegotiationRefused
	default:
		r.Outcome = RenegotiationFailed
	}
	c.reneg.hook(r)
}

// sentAlert returns the fatal alert this side sent, "" when none: a handshake
// that fails a check (a certificate, say) returns its own error and records
// the alert it sent in c.out.err (see sendAlertLocked).
func (c *Conn) sentAlert() string {
	c.out.Lock()
	defer c.out.Unlock()
	var op *net.OpError
	if errors.As(c.out.err, &op) && op.Op == "local error" {
		return op.Error()
	}
	return ""
}

// readHeld reads held data into b; it locks c.in.
func (c *Conn) readHeld(b []byte) int {
	c.in.Lock()
	defer c.in.Unlock()
	return c.reneg.read(b)
}

// read reads held data into b and lets go of the buffer once it is drained.
func (r *renegotiation) read(b []byte) int {
	n, _ := r.held.Read(b)
	if r.held.Len() == 0 {
		r.held = bytes.Buffer{}
	}
	return n
}
