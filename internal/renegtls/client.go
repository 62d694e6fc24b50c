package renegtls

import (
	"context"
	"crypto/tls"
	"net"
	"time"

	gotls "github.com/wstap/wstap/internal/renegtls/gotls"
)

// Renegotiation reports one server-initiated renegotiation: when it started,
// how long it took, its outcome, the alert or error that ended it, and the
// application data held while it ran.
type Renegotiation = gotls.Renegotiation

// RenegotiationOutcome is accepted, refused or failed.
type RenegotiationOutcome = gotls.RenegotiationOutcome

// The outcomes of a renegotiation.
const (
	Accepted = gotls.RenegotiationAccepted
	Refused  = gotls.RenegotiationRefused
	Failed   = gotls.RenegotiationFailed
)

// SessionCache holds TLS sessions for resumption across connections. It is
// the patched package's own type: crypto/tls sessions are opaque to it.
type SessionCache = gotls.ClientSessionCache

// NewSessionCache returns an LRU SessionCache of capacity sessions
// (crypto/tls's NewLRUClientSessionCache).
func NewSessionCache(capacity int) SessionCache { return gotls.NewLRUClientSessionCache(capacity) }

// Options are what Client needs beyond a crypto/tls Config.
type Options struct {
	// SessionCache, when not nil, resumes sessions (in place of
	// tls.Config.ClientSessionCache, which Client refuses).
	SessionCache SessionCache
	// OnRenegotiation, when not nil, is called once per HelloRequest the
	// server sends after the first handshake, on the goroutine in Read,
	// when its outcome is known. It may call ConnectionState, not Read.
	OnRenegotiation func(Renegotiation)
}

// Conn is a TLS client connection with the methods of *tls.Conn that wstap
// uses. Its TLS 1.2 renegotiation accepts application data that arrives
// during the new handshake and delivers it to Read in order.
type Conn struct {
	tc *gotls.Conn
}

// Client returns a TLS client on conn configured as cfg, like tls.Client.
// It refuses the cfg fields listed in refused (an error naming the field)
// and ignores the server-only ones.
func Client(conn net.Conn, cfg *tls.Config, opts Options) (*Conn, error) {
	f, err := forkConfig(cfg, opts)
	if err != nil {
		return nil, err
	}
	tc := gotls.Client(conn, f)
	if opts.OnRenegotiation != nil {
		tc.SetRenegotiationHook(opts.OnRenegotiation)
	}
	return &Conn{tc: tc}, nil
}

// Read reads application data; see tls.Conn.Read.
func (c *Conn) Read(b []byte) (int, error) { return c.tc.Read(b) }

// Write writes application data; see tls.Conn.Write.
func (c *Conn) Write(b []byte) (int, error) { return c.tc.Write(b) }

// Close sends close_notify (when the handshake completed) and closes the
// connection; see tls.Conn.Close.
func (c *Conn) Close() error { return c.tc.Close() }

// CloseWrite sends close_notify and no more data; see tls.Conn.CloseWrite.
func (c *Conn) CloseWrite() error { return c.tc.CloseWrite() }

// Handshake runs the client handshake; see tls.Conn.Handshake.
func (c *Conn) Handshake() error { return c.tc.Handshake() }

// HandshakeContext runs the client handshake until ctx is done; see
// tls.Conn.HandshakeContext.
func (c *Conn) HandshakeContext(ctx context.Context) error { return c.tc.HandshakeContext(ctx) }

// ConnectionState returns the connection's state as crypto/tls describes it
// (ExportKeyingMaterial excepted).
func (c *Conn) ConnectionState() tls.ConnectionState { return stdState(c.tc.ConnectionState()) }

// NetConn returns the connection under TLS.
func (c *Conn) NetConn() net.Conn { return c.tc.NetConn() }

// LocalAddr returns the local address.
func (c *Conn) LocalAddr() net.Addr { return c.tc.LocalAddr() }

// RemoteAddr returns the remote address.
func (c *Conn) RemoteAddr() net.Addr { return c.tc.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error { return c.tc.SetDeadline(t) }

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.tc.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline; see tls.Conn.SetWriteDeadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.tc.SetWriteDeadline(t) }
