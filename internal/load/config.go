// Package load is wstap's WebSocket load generator: it opens sessions over a
// ramp, holds them with the keep-alive asked for, measures echo round trips
// and closes cleanly, then says how every session ended. It is the control
// group for the 1006 question and the load client of wstap's benchmarks, so
// it spends at most one goroutine per session and allocates nothing per
// message.
package load

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

// Defaults and bounds of Config.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultCloseTimeout = 5 * time.Second
	// minMessageSize holds the stamp that lets an echo be timed.
	minMessageSize = stampSize
	// maxMessageSize keeps one session's buffers small.
	maxMessageSize = 1 << 20
)

// Config says what load to generate.
type Config struct {
	// URL is the ws:// or wss:// URL every session opens.
	URL string
	// Sessions is the number of sessions to open.
	Sessions int
	// Ramp spreads the openings evenly: session i starts at i*Ramp/Sessions.
	Ramp time.Duration
	// Hold is how long each session stays open after its 101.
	Hold time.Duration
	// Ping is the interval of the client's pings; 0 sends none. The server's
	// pings are always answered at once.
	Ping time.Duration
	// MessageEvery is the interval of text messages; 0 sends none. When the
	// server echoes them, their round trip is measured.
	MessageEvery time.Duration
	// MessageSize is the size of each message in bytes, at least 32 (the
	// stamp that times its echo); smaller sizes are raised.
	MessageSize int
	// Proxy is an HTTP proxy, http://host:port, reached with CONNECT for ws
	// and wss alike, as JMeter does.
	Proxy string
	// Insecure skips verifying the server's certificate.
	Insecure bool
	// CAFile is a PEM file of certificates to trust besides the system's.
	CAFile string
	// RootCAs, when set, are trusted instead of the system's roots (for
	// callers that have a pool rather than a file, such as the demo);
	// CAFile adds to them.
	RootCAs *x509.CertPool
	// Headers are sent with every upgrade request.
	Headers http.Header
	// Subprotocol, when set, is offered in Sec-WebSocket-Protocol.
	Subprotocol string
	// LocalAddrs are source IP addresses (such as 127.0.0.2, 127.0.0.3)
	// that sessions use in turn, to spread over more ephemeral ports.
	LocalAddrs []string
	// Timeout bounds the TCP dial, the proxy CONNECT, the TLS handshake and
	// the upgrade of one session; 0 means DefaultTimeout.
	Timeout time.Duration
	// CloseTimeout is how long a session waits for the server's close frame
	// after sending its own; 0 means DefaultCloseTimeout.
	CloseTimeout time.Duration
}

// plan is a checked Config, ready to dial with.
type plan struct {
	Config
	target     *url.URL
	addr       string // host:port of the target
	proxyAddr  string // host:port of the proxy, "" for none
	tls        *tls.Config
	localAddrs []*net.TCPAddr
}

// check validates cfg and prepares everything every session shares. Its
// errors name the field at fault.
func check(cfg Config) (*plan, error) {
	p := &plan{Config: cfg}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("URL %q: %w", cfg.URL, err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return nil, fmt.Errorf("URL %q: scheme must be ws or wss", cfg.URL)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("URL %q: no host", cfg.URL)
	}
	p.target = u
	port := u.Port()
	if port == "" {
		port = map[string]string{"ws": "80", "wss": "443"}[u.Scheme]
	}
	p.addr = net.JoinHostPort(u.Hostname(), port)

	switch {
	case cfg.Sessions <= 0:
		return nil, fmt.Errorf("sessions %d: must be at least 1", cfg.Sessions)
	case cfg.Ramp < 0, cfg.Hold < 0, cfg.Ping < 0, cfg.MessageEvery < 0, cfg.Timeout < 0, cfg.CloseTimeout < 0:
		return nil, fmt.Errorf("ramp %v, hold %v, ping %v, message interval %v, timeout %v, close timeout %v: none may be negative",
			cfg.Ramp, cfg.Hold, cfg.Ping, cfg.MessageEvery, cfg.Timeout, cfg.CloseTimeout)
	case cfg.MessageSize < 0 || cfg.MessageSize > maxMessageSize:
		return nil, fmt.Errorf("message size %d: must be between 0 and %d", cfg.MessageSize, maxMessageSize)
	}
	p.MessageSize = max(cfg.MessageSize, minMessageSize)
	if p.Timeout == 0 {
		p.Timeout = DefaultTimeout
	}
	if p.CloseTimeout == 0 {
		p.CloseTimeout = DefaultCloseTimeout
	}

	if cfg.Proxy != "" {
		pu, err := url.Parse(cfg.Proxy)
		if err != nil {
			return nil, fmt.Errorf("proxy %q: %w", cfg.Proxy, err)
		}
		if pu.Scheme != "http" || pu.Hostname() == "" || pu.Port() == "" {
			return nil, fmt.Errorf("proxy %q: must be http://host:port", cfg.Proxy)
		}
		p.proxyAddr = pu.Host
	}

	for _, a := range cfg.LocalAddrs {
		ip := net.ParseIP(a)
		if ip == nil {
			return nil, fmt.Errorf("local address %q: not an IP address", a)
		}
		p.localAddrs = append(p.localAddrs, &net.TCPAddr{IP: ip})
	}

	if u.Scheme == "wss" {
		p.tls, err = tlsConfig(cfg, u.Hostname())
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

// tlsConfig trusts the system roots (or RootCAs instead) plus CAFile, or
// nothing at all with Insecure.
func tlsConfig(cfg Config, serverName string) (*tls.Config, error) {
	c := &tls.Config{ServerName: serverName, InsecureSkipVerify: cfg.Insecure, RootCAs: cfg.RootCAs}
	if cfg.CAFile == "" {
		return c, nil
	}
	if c.RootCAs != nil {
		c.RootCAs = c.RootCAs.Clone()
	} else if sys, err := x509.SystemCertPool(); err == nil {
		c.RootCAs = sys
	} else {
		c.RootCAs = x509.NewCertPool()
	}
	pem, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("reading CA file: %w", err)
	}
	if !c.RootCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", cfg.CAFile)
	}
	return c, nil
}
