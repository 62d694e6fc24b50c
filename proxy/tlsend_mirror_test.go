package proxy

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wstap/wstap/internal/testkit"
)

// The three ways a side ends a TLS connection (docs/records.md, tls.*.end).
var tlsEndings = []string{tlsEndCloseNotify, tlsEndTCP, tlsEndReset}

// endTLS ends a TLS connection over raw as named: close_notify then FIN, a
// bare FIN under TLS, or a RST.
func endTLS(tc *tls.Conn, raw net.Conn, how string) {
	switch how {
	case tlsEndCloseNotify:
		tc.Close()
	case tlsEndTCP:
		raw.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, raw)
		raw.Close()
	case tlsEndReset:
		raw.(*net.TCPConn).SetLinger(0)
		raw.Close()
	}
}

// eofConn notes the error that ended the reads of the TCP connection.
type eofConn struct {
	net.Conn
	mu  sync.Mutex
	err error
}

func (c *eofConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.mu.Unlock()
	}
	return n, err
}

// ending says how the peer of tc ended it: its reads ended with err; a
// close_notify makes crypto/tls return io.EOF before the TCP connection
// under it ended.
func (c *eofConn) ending(err error) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case isReset(err) || isReset(c.err):
		return tlsEndReset
	case errors.Is(c.err, io.EOF):
		return tlsEndTCP
	case errors.Is(err, io.EOF):
		return tlsEndCloseNotify
	}
	return "error: " + err.Error()
}

// tlsEndingUpstream is a TLS 1.2 server (crypto/tls) that answers an upgrade
// with 101 and then, when end is set, ends the connection so; otherwise it
// reads until the client ends and sends how on seen.
func tlsEndingUpstream(t *testing.T, end string, seen chan<- string) (addr string, pool *x509.CertPool) {
	t.Helper()
	ca, leaf := caLeaf(t)
	cfg := &tls.Config{Certificates: []tls.Certificate{*leaf}, MaxVersion: tls.VersionTLS12}
	addr = testkit.Listen(t, "127.0.0.1", func(raw net.Conn) {
		ec := &eofConn{Conn: raw}
		tc := tls.Server(ec, cfg)
		br := bufio.NewReader(tc)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" || line == "\n" {
				break
			}
		}
		fmt.Fprintf(tc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", rfcAccept)
		if end != "" {
			time.Sleep(300 * time.Millisecond)
			endTLS(tc, raw, end)
			return
		}
		_, err := io.Copy(io.Discard, br)
		if err == nil {
			err = io.EOF
		}
		seen <- ec.ending(err)
		raw.Close()
	})
	return addr, ca.Pool()
}

// upgradeRequest is a WebSocket upgrade (RFC 6455 §1.3's key).
var upgradeRequest = fmt.Sprintf("GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", rfcKey)

// sClientEnding connects openssl s_client -msg to addr, sends the upgrade,
// and says how the server side ended the connection, from what s_client
// printed: a close_notify alert it received, an EOF without one, or a reset.
func sClientEnding(t *testing.T, openssl, addr string) string {
	t.Helper()
	cmd := exec.Command(openssl, "s_client", "-msg", "-ign_eof", "-crlf", "-connect", addr, "-servername", "127.0.0.1")
	cmd.Stdin = strings.NewReader(strings.ReplaceAll(upgradeRequest, "\r\n", "\n"))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("s_client did not end within 10 s:\n%s", out.String())
	}
	o := out.String()
	if !strings.Contains(o, "101 Switching Protocols") {
		t.Fatalf("s_client got no 101:\n%s", o)
	}
	switch {
	case strings.Contains(o, "<<< ") && strings.Contains(o, "close_notify"):
		return tlsEndCloseNotify
	case strings.Contains(o, "errno=104") || strings.Contains(o, "reset by peer"):
		return tlsEndReset
	case strings.Contains(o, "unexpected eof"):
		return tlsEndTCP
	}
	return "unrecognised s_client output:\n" + o
}

// TestTLSEndingMirroredToClient: an upstream that ends with close_notify,
// with a bare FIN or with a RST is seen so by openssl s_client -msg, the
// same with wstap in the path as without (transparency rule 3).
func TestTLSEndingMirroredToClient(t *testing.T) {
	openssl := testkit.NeedTool(t, "openssl")
	for _, end := range tlsEndings {
		t.Run(end, func(t *testing.T) {
			addr, pool := tlsEndingUpstream(t, end, nil)
			direct := sClientEnding(t, openssl, addr)
			p := startTestProxy(t, "wss://"+addr, true, pool)
			via := sClientEnding(t, openssl, p.srv.Addr().String())
			if direct != end || via != end {
				t.Errorf("upstream ended with %s: s_client saw %s directly, %s through wstap", end, direct, via)
			}
			p.waitRecords(1)
			r := p.records()[0]
			if r.TLS.Upstream == nil || r.TLS.Upstream.End != end || r.TLS.Client == nil || r.TLS.Client.End == "" {
				t.Errorf("tls %+v %+v, want upstream end %s and a client end", r.TLS.Upstream, r.TLS.Client, end)
			}
		})
	}
}

// TestTLSEndingMirroredToUpstream: a client (crypto/tls) that ends with
// close_notify, a bare FIN or a RST reaches the upstream the same way, with
// wstap in the path as without.
func TestTLSEndingMirroredToUpstream(t *testing.T) {
	for _, end := range tlsEndings {
		t.Run(end, func(t *testing.T) {
			seen := make(chan string, 2)
			addr, pool := tlsEndingUpstream(t, "", seen)
			direct := clientEnding(t, addr, pool, end, seen)
			p := startTestProxy(t, "wss://"+addr, true, pool)
			via := clientEnding(t, p.srv.Addr().String(), p.ca.Pool(), end, seen)
			if direct != end || via != end {
				t.Errorf("client ended with %s: the upstream saw %s directly, %s through wstap", end, direct, via)
			}
			p.waitRecords(1)
			r := p.records()[0]
			if r.TLS.Client == nil || r.TLS.Client.End != end || r.TLS.Upstream == nil || r.TLS.Upstream.End == "" {
				t.Errorf("tls %+v %+v, want client end %s and an upstream end", r.TLS.Client, r.TLS.Upstream, end)
			}
		})
	}
}

// clientEnding upgrades through addr, ends the connection as end says and
// returns how the upstream saw it end.
func clientEnding(t *testing.T, addr string, pool *x509.CertPool, end string, seen <-chan string) string {
	t.Helper()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(tc, upgradeRequest)
	line, err := bufio.NewReader(tc).ReadString('\n')
	if err != nil || !strings.Contains(line, "101") {
		t.Fatalf("upgrade through %s: %q %v", addr, line, err)
	}
	time.Sleep(100 * time.Millisecond)
	endTLS(tc, raw, end)
	select {
	case got := <-seen:
		return got
	case <-time.After(5 * time.Second):
		return "nothing within 5 s"
	}
}
