package proxy

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/wstap/wstap/internal/testkit"
)

// TestMain fails the package when any goroutine outlives the tests: every
// session, pump, peer and recorder goroutine must be gone once all sessions
// have ended and the proxies have shut down.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// rawConn is a client that speaks HTTP and WebSocket frames by hand.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

// rawUpgradeRequest is an upgrade request for path with a valid key.
func rawUpgradeRequest(host, path string, extra ...string) (req, key string) {
	k := make([]byte, 16)
	rand.Read(k)
	key = base64.StdEncoding.EncodeToString(k)
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", path, host, key)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String(), key
}

// rawDial connects to addr and returns the connection, without writing.
func rawDial(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

// readResponse reads a response head and, with a Content-Length, its body.
func (c *rawConn) readResponse() (status int, hdr http.Header, body string, err error) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	line, err := c.br.ReadString('\n')
	if err != nil {
		return 0, nil, "", err
	}
	parts := strings.SplitN(strings.TrimSpace(line), " ", 3)
	if len(parts) < 2 {
		return 0, nil, "", fmt.Errorf("status line %q", line)
	}
	status, _ = strconv.Atoi(parts[1])
	hdr = http.Header{}
	for {
		l, err := c.br.ReadString('\n')
		if err != nil {
			return status, hdr, "", err
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			break
		}
		if i := strings.IndexByte(l, ':'); i > 0 {
			hdr.Add(l[:i], strings.TrimSpace(l[i+1:]))
		}
	}
	if cl := hdr.Get("Content-Length"); cl != "" && status != 101 {
		n, _ := strconv.Atoi(cl)
		b := make([]byte, n)
		if _, err := io.ReadFull(c.br, b); err != nil {
			return status, hdr, string(b), err
		}
		body = string(b)
	}
	return status, hdr, body, nil
}

// readFrame reads one frame and returns its header byte 0, payload
// (unmasked) and whether it was masked.
func (c *rawConn) readFrame() (b0 byte, payload []byte, masked bool, err error) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	var h [2]byte
	if _, err = io.ReadFull(c.br, h[:]); err != nil {
		return
	}
	n := int64(h[1] & 0x7f)
	switch n {
	case 126:
		var x [2]byte
		if _, err = io.ReadFull(c.br, x[:]); err != nil {
			return
		}
		n = int64(binary.BigEndian.Uint16(x[:]))
	case 127:
		var x [8]byte
		if _, err = io.ReadFull(c.br, x[:]); err != nil {
			return
		}
		n = int64(binary.BigEndian.Uint64(x[:]))
	}
	masked = h[1]&0x80 != 0
	var key [4]byte
	if masked {
		if _, err = io.ReadFull(c.br, key[:]); err != nil {
			return
		}
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(c.br, payload); err != nil {
		return
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return h[0], payload, masked, nil
}

// rawFrame builds one frame by hand: any FIN, RSV bits, opcode and masking,
// so tests can break RFC 6455 on purpose.
func rawFrame(fin bool, rsv, op byte, mask bool, payload []byte) []byte {
	b0 := op & 0x0f
	if fin {
		b0 |= 0x80
	}
	b0 |= (rsv & 7) << 4
	out := []byte{b0}
	m := byte(0)
	if mask {
		m = 0x80
	}
	switch n := len(payload); {
	case n <= 125:
		out = append(out, m|byte(n))
	case n <= 0xffff:
		out = append(out, m|126, byte(n>>8), byte(n))
	default:
		out = append(out, m|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if !mask {
		return append(out, payload...)
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	out = append(out, key[:]...)
	for i, c := range payload {
		out = append(out, c^key[i%4])
	}
	return out
}

// rawServer is an upstream that speaks TCP by hand: handle gets each
// connection with a reader positioned at its first byte.
func rawServer(t *testing.T, handle func(c *rawConn)) (addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testkit.Serve(t, ln, func(c net.Conn) { handle(&rawConn{Conn: c, br: bufio.NewReader(c)}) })
	return ln.Addr().String()
}

// readRequest reads a request head on the server side and returns the
// request line and the headers.
func (c *rawConn) readRequest() (line string, hdr http.Header, err error) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	line, err = c.br.ReadString('\n')
	if err != nil {
		return "", nil, err
	}
	hdr = http.Header{}
	for {
		l, err := c.br.ReadString('\n')
		if err != nil {
			return line, hdr, err
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			return strings.TrimSpace(line), hdr, nil
		}
		if i := strings.IndexByte(l, ':'); i > 0 {
			hdr.Add(l[:i], strings.TrimSpace(l[i+1:]))
		}
	}
}

// response101 is a valid 101 answering key.
func response101(key string) string {
	return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		acceptFor(key) + "\r\n\r\n"
}

// event is one line of events.jsonl.
type jsonEvent map[string]any

// events reads events.jsonl of a stopped proxy.
func (p *testProxy) events() []jsonEvent {
	p.t.Helper()
	p.stop()
	return testkit.ReadJSONL[jsonEvent](p.t, filepath.Join(p.dir, "events.jsonl"))
}

// healthyBeside runs n echo sessions through p beside whatever else a test does:
// random messages of random sizes, each echo compared by SHA-256, until stop
// is called. stop closes them cleanly and reports how many messages went
// through; any difference fails the test.
func healthyBeside(t *testing.T, p *testProxy, n int) (stop func() (messages int)) {
	t.Helper()
	var wg sync.WaitGroup
	quit := make(chan struct{})
	var mu sync.Mutex
	total := 0
	for i := 0; i < n; i++ {
		c, _, err := p.dialer().Dial(p.url(fmt.Sprintf("/healthy/%d", i)), nil)
		if err != nil {
			t.Fatalf("healthy session %d: %v", i, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			sent := 0
			sizes := []int{0, 1, 125, 126, 127, 1000, 65535, 65536, 70000}
			for k := 0; ; k++ {
				select {
				case <-quit:
					c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"))
					for {
						if _, _, err := c.ReadMessage(); err != nil {
							if !websocket.IsCloseError(err, 1000) {
								t.Errorf("healthy session: close: %v", err)
							}
							break
						}
					}
					mu.Lock()
					total += sent
					mu.Unlock()
					return
				default:
				}
				msg := make([]byte, sizes[k%len(sizes)])
				rand.Read(msg)
				if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
					t.Errorf("healthy session: write: %v", err)
					return
				}
				_, got, err := c.ReadMessage()
				if err != nil {
					t.Errorf("healthy session: read: %v", err)
					return
				}
				if sha256.Sum256(got) != sha256.Sum256(msg) {
					t.Errorf("healthy session: echo of %d bytes differs (%d bytes back)", len(msg), len(got))
					return
				}
				sent++
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return func() int {
		close(quit)
		wg.Wait()
		return total
	}
}

// rawClient connects to the proxy by hand, over TLS when it serves TLS.
func (p *testProxy) rawClient(t *testing.T) *rawConn {
	t.Helper()
	addr := p.srv.Addr().String()
	if !p.tls {
		return rawDial(t, addr)
	}
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: p.ca.Pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

// coderOptions are coder/websocket dial options that trust the proxy's CA.
func (p *testProxy) coderOptions(t *testing.T) *cws.DialOptions {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.ca.Pool()}}
	t.Cleanup(tr.CloseIdleConnections)
	return &cws.DialOptions{HTTPClient: &http.Client{Transport: tr}}
}
