// Package platform is the demo's built-in "chat platform": a WebSocket echo
// server with the habits of a real one — an idle timeout that drops silent
// sessions with a FIN and no close frame, a cap of concurrent sessions above
// which new ones are reset shortly after their 101, server pings, and a
// subprotocol it selects only when offered. wstap demo and the tests run it on
// loopback.
package platform

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Subprotocol is the subprotocol the platform selects when a client offers it.
const Subprotocol = "v1.chat"

// Defaults of Config.
const (
	DefaultAddr     = "127.0.0.1:0"
	DefaultCapDelay = 200 * time.Millisecond
	// DefaultReadBuffer keeps an idle session small.
	DefaultReadBuffer = 2048
)

// handshakeTimeout bounds the TLS handshake and the upgrade request, so a
// client that connects and says nothing does not hold a goroutine forever.
const handshakeTimeout = 10 * time.Second

// Config says how the platform behaves. The zero value is a plain ws:// echo
// server on a random loopback port with no timeout, no cap and no pings.
type Config struct {
	// Addr is the listen address; "" means DefaultAddr.
	Addr string
	// TLS serves wss:// with a throwaway certificate for 127.0.0.1, ::1 and
	// localhost, signed by a throwaway CA (see Platform.CertPEM and
	// CertPool), or with Cert when set.
	TLS bool
	// Cert, with TLS, is the certificate the platform presents instead of a
	// throwaway one; CertPEM and CertPool are then nil.
	Cert *tls.Certificate
	// IdleTimeout drops a session after this much silence from the client:
	// a TCP FIN (after a TLS close_notify on wss) and never a close frame.
	// Any data frame or ping from the client restarts it; pongs, which answer
	// the platform's own pings, do not. 0 means no idle timeout.
	IdleTimeout time.Duration
	// Cap is the number of concurrent sessions the platform keeps; a session
	// upgraded above it is reset (RST) CapDelay after its 101. 0 means no cap.
	Cap int
	// CapDelay is how long an over-cap session lives after its 101; 0 means
	// DefaultCapDelay.
	CapDelay time.Duration
	// PingEvery is the interval of the platform's pings; 0 means none.
	PingEvery time.Duration
	// ReadBuffer is the size of each session's read buffer; 0 means
	// DefaultReadBuffer. A larger one lets a client's pipelined small
	// messages be read, and their echoes written, in fewer calls.
	ReadBuffer int
	// Faults lets a client ask for a fault instead of an echo with the text
	// message FaultPrefix + kind (see fault.go); wstap-soak uses it. Off,
	// such a message is echoed like any other.
	Faults bool
}

// Platform is a running built-in platform.
type Platform struct {
	cfg      Config
	ln       net.Listener
	tls      *tls.Config
	certPEM  []byte
	certPool *x509.CertPool
	stats    counters

	mu     sync.Mutex
	conns  map[*net.TCPConn]struct{}
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// Start listens on cfg.Addr and serves until Close.
func Start(cfg Config) (*Platform, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.CapDelay == 0 {
		cfg.CapDelay = DefaultCapDelay
	}
	if cfg.ReadBuffer == 0 {
		cfg.ReadBuffer = DefaultReadBuffer
	}
	if cfg.IdleTimeout < 0 || cfg.Cap < 0 || cfg.CapDelay < 0 || cfg.PingEvery < 0 || cfg.ReadBuffer < 0 {
		return nil, fmt.Errorf("platform config: negative IdleTimeout %v, Cap %d, CapDelay %v, PingEvery %v or ReadBuffer %d",
			cfg.IdleTimeout, cfg.Cap, cfg.CapDelay, cfg.PingEvery, cfg.ReadBuffer)
	}
	p := &Platform{cfg: cfg, conns: map[*net.TCPConn]struct{}{}, done: make(chan struct{})}
	if cfg.TLS {
		if err := p.setupTLS(); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", cfg.Addr, err)
	}
	p.ln = ln
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// setupTLS picks the certificate the platform presents: cfg.Cert, or a
// throwaway one whose CA CertPEM and CertPool hold. Its ALPN offer is
// http/1.1 only, as a WebSocket server's (RFC 8441 WebSocket over HTTP/2 is
// not served).
func (p *Platform) setupTLS() error {
	cert := p.cfg.Cert
	if cert == nil {
		certs, err := NewCerts()
		if err != nil {
			return err
		}
		cert, p.certPEM, p.certPool = &certs.Leaf, certs.CAPEM, certs.Pool
	}
	p.tls = &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"}}
	return nil
}

// Addr is the address the platform listens on, host:port.
func (p *Platform) Addr() string { return p.ln.Addr().String() }

// URL is the platform's WebSocket URL: ws://ADDR/chat, or wss:// with TLS.
// The platform serves any path.
func (p *Platform) URL() string {
	if p.tls != nil {
		return "wss://" + p.Addr() + "/chat"
	}
	return "ws://" + p.Addr() + "/chat"
}

// CertPEM is the PEM of the CA that signed the platform's certificate, nil
// without TLS or with Config.Cert.
func (p *Platform) CertPEM() []byte { return p.certPEM }

// CertPool is a pool holding the CA of CertPEM, nil when CertPEM is.
func (p *Platform) CertPool() *x509.CertPool { return p.certPool }

// Stats returns a snapshot of the platform's counters.
func (p *Platform) Stats() Stats { return p.stats.snapshot() }

// Close stops listening, ends every connection at once (without close
// frames) and waits for all the platform's goroutines. It may be called twice.
func (p *Platform) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		close(p.done)
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		if err := p.ln.Close(); err != nil {
			p.closeErr = fmt.Errorf("closing platform listener %s: %w", p.Addr(), err)
		}
		p.wg.Wait()
	})
	return p.closeErr
}

// accept runs the accept loop until the listener is closed.
func (p *Platform) accept() {
	defer p.wg.Done()
	var backoff time.Duration
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and friends: wait a little, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(backoff):
				continue
			case <-p.done:
				return
			}
		}
		backoff = 0
		tc := c.(*net.TCPConn)
		if !p.track(tc) {
			tc.Close()
			continue
		}
		p.wg.Add(1)
		go p.serve(tc)
	}
}

// track registers a connection so Close can end it; false once closed.
func (p *Platform) track(c *net.TCPConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Platform) untrack(c *net.TCPConn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}
