package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wstap/wstap/capture/record"
)

// recordConn counts the TLS records read from a TCP connection and can
// cork its writes: while corked, what the TLS stack writes (a record per
// message) is held, and uncork sends it in one TCP write, so the records
// reach the other end in one segment.
type recordConn struct {
	net.Conn
	records atomic.Int64 // complete records read

	hdr       [recordHeaderLen]byte // scan state; the reading goroutine's
	hn, left  int
	mu        sync.Mutex
	corked    bool
	held      []byte
	heldCount int
}

func (c *recordConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	for b := p[:n]; len(b) > 0; {
		if c.left > 0 {
			k := min(c.left, len(b))
			c.left -= k
			b = b[k:]
			if c.left == 0 {
				c.records.Add(1)
			}
			continue
		}
		k := copy(c.hdr[c.hn:], b)
		c.hn += k
		b = b[k:]
		if c.hn == recordHeaderLen {
			c.hn, c.left = 0, int(c.hdr[3])<<8|int(c.hdr[4])
		}
	}
	return n, err
}

func (c *recordConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		c.held = append(c.held, p...)
		c.heldCount++
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *recordConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork sends what was held in one write and returns how many writes of
// the TLS stack it held.
func (c *recordConn) uncork() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	n := c.heldCount
	_, err := c.Conn.Write(c.held)
	c.held, c.heldCount = nil, 0
	return n, err
}

// recordServer is a gorilla/websocket upstream over TLS whose connection
// counts and corks records (one session at a time): it echoes every
// message, and answers "burst" with ten messages sent corked.
func recordServer(t *testing.T) (url string, pool *x509.CertPool, conn <-chan *recordConn) {
	conns := make(chan *recordConn, 1)
	up := &websocket.Upgrader{}
	var mine *recordConn
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		rc := mine
		for {
			mt, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			if string(p) != "burst" {
				if c.WriteMessage(mt, p) != nil {
					return
				}
				continue
			}
			rc.cork()
			for i := range 10 {
				c.WriteMessage(websocket.BinaryMessage, fmt.Appendf(nil, "b%d", i))
			}
			if n, err := rc.uncork(); err != nil || n != 10 {
				t.Errorf("upstream: the burst went in %d TLS writes (want 10): %v", n, err)
			}
		}
	}))
	ts.Listener = &recordListener{Listener: ts.Listener, conns: conns, mine: &mine}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	pool = x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	return "wss" + strings.TrimPrefix(ts.URL, "https"), pool, conns
}

type recordListener struct {
	net.Listener
	conns chan *recordConn
	mine  **recordConn
}

func (l *recordListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	rc := &recordConn{Conn: c}
	*l.mine = rc // read by the handler, which runs after the handshake on rc
	l.conns <- rc
	return rc, nil
}

// TestCoalescedRecords sends ten messages as ten TLS records in one TCP
// segment, each way, through wstap (TLS on both legs, gorilla/websocket at
// both ends): they arrive intact and in order, and wstap sent them on in one
// record, as it read them in one read (RFC 8446 §5.1: record boundaries
// carry no meaning), where one record each costs a write each.
func TestCoalescedRecords(t *testing.T) {
	upURL, pool, upConns := recordServer(t)
	p := startTestProxy(t, upURL, true, pool)
	var cli *recordConn
	d := p.dialer()
	d.NetDialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := new(net.Dialer).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cli = &recordConn{Conn: raw}
		host, _, _ := net.SplitHostPort(addr)
		tc := tls.Client(cli, &tls.Config{RootCAs: p.ca.Pool(), ServerName: host})
		return tc, tc.HandshakeContext(ctx)
	}
	c, _, err := d.Dial(p.url("/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	up := <-upConns
	expect := func(prefix string) {
		t.Helper()
		for i := range 10 {
			_, m, err := c.ReadMessage()
			if want := fmt.Sprintf("%s%d", prefix, i); err != nil || string(m) != want {
				t.Fatalf("message %d: %q, %v (want %q)", i, m, err, want)
			}
		}
	}
	roundTrip := func(msg string) {
		t.Helper()
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, m, err := c.ReadMessage(); err != nil || string(m) != msg {
			t.Fatalf("echo of %q: %q, %v", msg, m, err)
		}
	}

	// Client to upstream: ten messages, ten records, one segment.
	roundTrip("sync")
	before := up.records.Load()
	cli.cork()
	for i := range 10 {
		c.WriteMessage(websocket.BinaryMessage, fmt.Appendf(nil, "m%d", i))
	}
	if n, err := cli.uncork(); err != nil || n != 10 {
		t.Fatalf("client: the burst went in %d TLS writes (want 10): %v", n, err)
	}
	expect("m")
	if got := up.records.Load() - before; got > 2 {
		t.Errorf("client to upstream: ten records in one segment reached the upstream as %d records (want 1)", got)
	}

	// Upstream to client: the same, sent by the upstream.
	roundTrip("sync")
	before = cli.records.Load()
	if err := c.WriteMessage(websocket.TextMessage, []byte("burst")); err != nil {
		t.Fatal(err)
	}
	expect("b")
	if got := cli.records.Load() - before; got > 2 {
		t.Errorf("upstream to client: ten records in one segment reached the client as %d records (want 1)", got)
	}
}

// writeCounter counts the writes to a TCP connection.
type writeCounter struct {
	net.Conn
	writes atomic.Int64
}

func (c *writeCounter) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestGatheredWrite writes through a gatherer over crypto/tls (a client to
// a crypto/tls server on loopback): a 40,000-byte chunk, which crypto/tls
// writes as eight records (small ones first: its dynamic record sizing),
// leaves in one write of the socket (eight without), a 100-byte chunk in
// one, and the server reads every byte as written. Once the socket is
// closed, a gathered write returns the socket's error.
func TestGatheredWrite(t *testing.T) {
	ca, leaf := caLeaf(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(tls.Server(c, &tls.Config{Certificates: []tls.Certificate{*leaf}}))
		got <- b
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	wc := &writeCounter{Conn: raw}
	sn := newSniffer(wc, record.SideUpstream)
	tc := tls.Client(sn, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	sn.arm()
	w := gathered(tc)
	if _, ok := w.(*gatherer); !ok {
		t.Fatalf("gathered(tls.Conn) is a %T, want a *gatherer", w)
	}
	var sent []byte
	for _, c := range []struct{ size, writes int }{{40000, 1}, {100, 1}} {
		chunk := make([]byte, c.size)
		for i := range chunk {
			chunk[i] = byte(len(sent) + i)
		}
		before := wc.writes.Load()
		if n, err := w.Write(chunk); n != c.size || err != nil {
			t.Fatalf("writing %d bytes: %d, %v", c.size, n, err)
		}
		if n := wc.writes.Load() - before; n != int64(c.writes) {
			t.Errorf("%d bytes left in %d writes of the socket, want %d", c.size, n, c.writes)
		}
		sent = append(sent, chunk...)
	}
	tc.CloseWrite()
	if b := <-got; !bytes.Equal(b, sent) {
		t.Errorf("the server read %d bytes, not the %d written", len(b), len(sent))
	}
	raw.Close()
	if n, err := w.Write(make([]byte, 40000)); err == nil || n != 0 {
		t.Errorf("writing to a closed socket: %d, %v (want 0 and an error)", n, err)
	}
}
