package load

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gobwas/ws"
)

// Reasons a session failed to open: the keys of Result.Failed. A non-101
// answer is "http-status:<code>".
const (
	FailDial      = "dial"      // TCP connect to the target
	FailProxy     = "proxy"     // TCP connect to the proxy, or its CONNECT answer
	FailTLS       = "tls"       // the TLS handshake
	FailHandshake = "handshake" // the upgrade answer was a 101 but invalid, or never came
)

// openError is why a session never opened.
type openError struct {
	reason string // one of the Fail* reasons or http-status:<code>
	err    error
}

func (e *openError) Error() string { return e.reason + ": " + e.err.Error() }
func (e *openError) Unwrap() error { return e.err }

// upgrader builds the gobwas dialer used only for the upgrade exchange; the
// plan dials TCP, the proxy and TLS itself so it can tell the failures apart.
func (p *plan) upgrader() ws.Dialer {
	d := ws.Dialer{}
	if p.Subprotocol != "" {
		d.Protocols = []string{p.Subprotocol}
	}
	if len(p.Headers) > 0 {
		h := p.Headers.Clone()
		if host := h.Get("Host"); host != "" {
			d.Host = host
			h.Del("Host")
		}
		d.Header = ws.HandshakeHeaderHTTP(h)
	}
	return d
}

// open connects session i: TCP (directly or through the proxy's CONNECT),
// TLS for wss, then the upgrade. It returns the connection, the bytes the
// server sent right after its 101 (usually none) and the selected
// subprotocol.
func (p *plan) open(ctx context.Context, up *ws.Dialer, i int) (net.Conn, []byte, string, error) {
	deadline := time.Now().Add(p.Timeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	d := net.Dialer{}
	if len(p.localAddrs) > 0 {
		d.LocalAddr = p.localAddrs[i%len(p.localAddrs)]
	}
	var conn net.Conn
	if p.proxyAddr != "" {
		c, err := d.DialContext(ctx, "tcp", p.proxyAddr)
		if err != nil {
			return nil, nil, "", &openError{FailProxy, fmt.Errorf("dialing proxy %s: %w", p.proxyAddr, err)}
		}
		c.SetDeadline(deadline)
		if err := connect(c, p.addr); err != nil {
			c.Close()
			return nil, nil, "", &openError{FailProxy, err}
		}
		conn = c
	} else {
		c, err := d.DialContext(ctx, "tcp", p.addr)
		if err != nil {
			return nil, nil, "", &openError{FailDial, fmt.Errorf("dialing %s: %w", p.addr, err)}
		}
		conn = c
	}
	conn.SetDeadline(deadline)

	if p.tls != nil {
		tc := tls.Client(conn, p.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, nil, "", &openError{FailTLS, fmt.Errorf("TLS handshake with %s: %w", p.addr, err)}
		}
		conn = tc
	}

	br, hs, err := up.Upgrade(conn, p.target)
	if err != nil {
		conn.Close()
		var status ws.StatusError
		if errors.As(err, &status) {
			return nil, nil, "", &openError{"http-status:" + strconv.Itoa(int(status)), fmt.Errorf("upgrading %s: %w", p.target, err)}
		}
		return nil, nil, "", &openError{FailHandshake, fmt.Errorf("upgrading %s: %w", p.target, err)}
	}
	var early []byte
	if br != nil {
		early = make([]byte, br.Buffered())
		br.Read(early)
		ws.PutReader(br)
	}
	conn.SetDeadline(time.Time{})
	return conn, early, hs.Protocol, nil
}

// connect asks the HTTP proxy on c for a tunnel to target (host:port).
func connect(c net.Conn, target string) error {
	if _, err := fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target); err != nil {
		return fmt.Errorf("sending CONNECT %s to the proxy: %w", target, err)
	}
	br := bufio.NewReaderSize(c, 1024)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return fmt.Errorf("reading the proxy's answer to CONNECT %s: %w", target, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("proxy answered CONNECT %s with %s", target, resp.Status)
	}
	if br.Buffered() > 0 {
		return fmt.Errorf("proxy sent %d bytes after its answer to CONNECT %s, before the client spoke", br.Buffered(), target)
	}
	return nil
}
