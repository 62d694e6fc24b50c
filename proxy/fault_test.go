package proxy

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"
	"github.com/wstap/wstap/capture/record"
	"github.com/wstap/wstap/frames"
)

// The fault matrix of issue 9, item 2: each case is a raw TCP client and a
// raw TCP upstream doing one hostile or unusual thing through wstap, while
// 100 healthy gorilla echo sessions run through the same proxy. Each case
// checks that each end received exactly what the other sent (or, when a
// side dies, what it had sent so far and the same kind of ending), and the
// verdict or finding in sessions.jsonl.

// faultPeer is one end of a case: what it sent and what it received.
type faultPeer struct {
	t    *testing.T
	conn net.Conn      // what the script reads and writes (TCP or TLS)
	c    *net.TCPConn  // the TCP connection under it
	br   *bufio.Reader // reads conn
	sent bytes.Buffer
	got  bytes.Buffer
	// alert, on a TLS upstream, makes its TLS stack send a fatal alert.
	alert func()
	// hsErr is how reading the upgrade response failed (client side).
	hsErr error
}

func (p *faultPeer) write(b []byte) {
	p.sent.Write(b)
	if _, err := p.conn.Write(b); err != nil {
		p.t.Errorf("write: %v", err)
	}
}

// readN reads exactly n bytes.
func (p *faultPeer) readN(n int) {
	p.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, n)
	k, err := io.ReadFull(p.br, b)
	p.got.Write(b[:k])
	if err != nil {
		p.t.Errorf("read %d bytes: got %d: %v", n, k, err)
	}
}

// readEnd reads until the connection ends and returns how.
func (p *faultPeer) readEnd() error {
	p.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(&p.got, p.br)
	if err == nil {
		err = io.EOF
	}
	return err
}

func (p *faultPeer) closeWrite() {
	if tc, ok := p.conn.(*tls.Conn); ok {
		tc.CloseWrite()
	}
	p.c.CloseWrite()
}
func (p *faultPeer) reset() { p.c.SetLinger(0); p.c.Close() }

func mustEnd(t *testing.T, who string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: connection ended with %v, want %v", who, err, want)
	}
}

// wsFrame renders one frame; mask masks it with a random key.
func wsFrame(op ws.OpCode, fin bool, rsv byte, mask bool, payload []byte) []byte {
	f := ws.NewFrame(op, fin, append([]byte(nil), payload...))
	f.Header.Rsv = rsv
	if mask {
		f = ws.MaskFrame(f)
	}
	var b bytes.Buffer
	ws.WriteFrame(&b, f)
	return b.Bytes()
}

func closeFrame(mask bool, code ws.StatusCode) []byte {
	return wsFrame(ws.OpClose, true, 0, mask, ws.NewCloseFrameBody(code, ""))
}

type faultCase struct {
	name string
	tls  bool // through the proxy whose upstream speaks TLS
	// up runs on the upstream after it answered 101 (or, with noUpgrade,
	// right after it read the request).
	up        func(t *testing.T, p *faultPeer)
	noUpgrade bool
	// cli runs on the client after it read the response head.
	cli func(t *testing.T, p *faultPeer, status int)
	// exact: each end got exactly what the other sent.
	exact bool
	// expected record
	verdict record.Verdict
	first   record.Side
	how     record.How
	finding string
}

// exchange: each side sends its bytes, then a close handshake started by the
// client; the upstream closes TCP first, as a server should.
func exchange(cliSend, upSend []byte) (func(*testing.T, *faultPeer, int), func(*testing.T, *faultPeer)) {
	cc, uc := closeFrame(true, 1000), closeFrame(false, 1000)
	cli := func(t *testing.T, p *faultPeer, _ int) {
		p.write(cliSend)
		p.write(cc)
		p.readN(len(upSend) + len(uc))
		mustEnd(t, "client", p.readEnd(), io.EOF)
		p.c.Close()
	}
	up := func(t *testing.T, p *faultPeer) {
		p.write(upSend)
		p.readN(len(cliSend) + len(cc))
		p.write(uc)
		p.closeWrite()
		mustEnd(t, "upstream", p.readEnd(), io.EOF)
		p.c.Close()
	}
	return cli, up
}

func frameCase(name string, cliSend, upSend []byte, finding string) faultCase {
	cli, up := exchange(cliSend, upSend)
	return faultCase{name: name, cli: cli, up: up, exact: true, verdict: record.VerdictClean,
		first: record.SideClient, how: record.HowCloseHandshake, finding: finding}
}

func faultCases() []faultCase {
	hello := wsFrame(ws.OpText, true, 0, true, []byte("hello"))
	world := wsFrame(ws.OpText, true, 0, false, []byte("world"))
	cases := []faultCase{
		{
			name: "upstream-killed-mid-frame",
			up: func(t *testing.T, p *faultPeer) {
				f := wsFrame(ws.OpBinary, true, 0, false, bytes.Repeat([]byte("x"), 1000))
				p.write(world)
				p.write(f[:300])
				time.Sleep(150 * time.Millisecond) // the proxy relays it before the RST
				p.reset()
			},
			cli: func(t *testing.T, p *faultPeer, _ int) {
				mustEnd(t, "client", p.readEnd(), syscall.ECONNRESET)
			},
			exact: true, verdict: record.VerdictAbnormalUp, first: record.SideUpstream, how: record.HowReset,
		},
		{
			name: "rst-during-handshake", noUpgrade: true,
			up: func(t *testing.T, p *faultPeer) { p.reset() },
			cli: func(t *testing.T, p *faultPeer, status int) {
				if status != -1 {
					t.Errorf("client got a response (status %d) to a handshake the upstream reset", status)
				}
				mustEnd(t, "client", p.hsErr, syscall.ECONNRESET)
			},
			verdict: record.VerdictRejected, first: record.SideUpstream, how: record.HowReset,
		},
		{
			name: "tls-alert-mid-session", tls: true,
			up: func(t *testing.T, p *faultPeer) {
				p.write(world)
				p.readN(len(hello))
				// The upstream's TLS stack meets a corrupt record and answers
				// with a bad_record_mac alert, then drops TCP.
				p.alert()
			},
			cli: func(t *testing.T, p *faultPeer, _ int) {
				p.write(hello)
				p.readN(len(world))
				mustEnd(t, "client", p.readEnd(), io.EOF)
			},
			exact: true, verdict: record.VerdictAbnormalUp, first: record.SideUpstream, how: record.HowTLSError,
		},
		// The four cases of net/http/httputil TestReverseProxyWebSocketHalfTCP.
		{
			name: "half-close/server-close-read",
			up: func(t *testing.T, p *faultPeer) {
				p.c.CloseRead()
				p.write(world)
				time.Sleep(50 * time.Millisecond)
				p.closeWrite()
				p.c.Close()
			},
			cli: func(t *testing.T, p *faultPeer, _ int) {
				p.readN(len(world))
				mustEnd(t, "client", p.readEnd(), io.EOF)
				p.c.Close()
			},
			exact: true, verdict: record.VerdictAbnormalUp, first: record.SideUpstream, how: record.HowEOF,
		},
		{
			name: "half-close/server-close-write",
			up: func(t *testing.T, p *faultPeer) {
				p.closeWrite()
				p.readN(len(hello))
				mustEnd(t, "upstream", p.readEnd(), io.EOF)
				p.c.Close()
			},
			cli: func(t *testing.T, p *faultPeer, _ int) {
				p.write(hello)
				mustEnd(t, "client", p.readEnd(), io.EOF)
				p.c.Close()
			},
			exact: true, verdict: record.VerdictAbnormalUp, first: record.SideUpstream, how: record.HowEOF,
		},
		{
			name: "half-close/client-close-read",
			up: func(t *testing.T, p *faultPeer) {
				p.readN(len(hello))
				mustEnd(t, "upstream", p.readEnd(), io.EOF)
				p.c.Close()
			},
			cli: func(t *testing.T, p *faultPeer, _ int) {
				p.c.CloseRead()
				p.write(hello)
				time.Sleep(50 * time.Millisecond)
				p.closeWrite()
				time.Sleep(50 * time.Millisecond)
				p.c.Close()
			},
			exact: true, verdict: record.VerdictAbnormalClient, first: record.SideClient, how: record.HowEOF,
		},
		{
			name: "half-close/client-close-write",
			up: func(t *testing.T, p *faultPeer) {
				p.write(world)
				mustEnd(t, "upstream", p.readEnd(), io.EOF)
				p.c.Close()
			},
			cli: func(t *testing.T, p *faultPeer, _ int) {
				p.closeWrite()
				p.readN(len(world))
				mustEnd(t, "client", p.readEnd(), io.EOF)
				p.c.Close()
			},
			exact: true, verdict: record.VerdictAbnormalClient, first: record.SideClient, how: record.HowEOF,
		},
		{
			name: "upstream-close-then-data",
			up: func(t *testing.T, p *faultPeer) {
				p.write(closeFrame(false, 1001))
				p.write(world)
				p.readN(len(closeFrame(true, 1001)))
				p.closeWrite()
				mustEnd(t, "upstream", p.readEnd(), io.EOF)
				p.c.Close()
			},
			cli: func(t *testing.T, p *faultPeer, _ int) {
				p.readN(len(closeFrame(false, 1001)) + len(world))
				p.write(closeFrame(true, 1001))
				mustEnd(t, "client", p.readEnd(), io.EOF)
				p.c.Close()
			},
			exact: true, verdict: record.VerdictClean, first: record.SideUpstream, how: record.HowCloseHandshake,
			finding: frames.RuleAfterClose,
		},
		{
			name: "client-data-after-close",
			up: func(t *testing.T, p *faultPeer) {
				p.readN(len(closeFrame(true, 1000)) + len(hello))
				p.write(closeFrame(false, 1000))
				p.closeWrite()
				mustEnd(t, "upstream", p.readEnd(), io.EOF)
				p.c.Close()
			},
			cli: func(t *testing.T, p *faultPeer, _ int) {
				p.write(closeFrame(true, 1000))
				p.write(hello)
				p.readN(len(closeFrame(false, 1000)))
				mustEnd(t, "client", p.readEnd(), io.EOF)
				p.c.Close()
			},
			exact: true, verdict: record.VerdictClean, first: record.SideClient, how: record.HowCloseHandshake,
			finding: frames.RuleAfterClose,
		},
		{
			name: "declared-length-2^63-1",
			up: func(t *testing.T, p *faultPeer) {
				p.readN(10 + 4 + 1<<20)
				mustEnd(t, "upstream", p.readEnd(), io.EOF)
				p.c.Close()
			},
			cli: func(t *testing.T, p *faultPeer, _ int) {
				hdr := []byte{0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}
				binary.BigEndian.PutUint64(hdr[2:], 1<<63-1)
				p.write(hdr)
				chunk := make([]byte, 64<<10)
				for i := 0; i < 16; i++ {
					rand.Read(chunk)
					p.write(chunk)
				}
				p.closeWrite()
				mustEnd(t, "client", p.readEnd(), io.EOF)
				p.c.Close()
			},
			exact: true, verdict: record.VerdictAbnormalClient, first: record.SideClient, how: record.HowEOF,
		},
		frameCase("control-frame-126-bytes", hello, wsFrame(ws.OpPing, true, 0, false, bytes.Repeat([]byte("p"), 126)), frames.RuleControlTooLong),
		frameCase("fragmented-ping", hello, wsFrame(ws.OpPing, false, 0, false, []byte("p")), frames.RuleControlFragmented),
		frameCase("unmasked-client-frame", wsFrame(ws.OpText, true, 0, false, []byte("bare")), world, frames.RuleUnmaskedClient),
		frameCase("masked-server-frame", hello, wsFrame(ws.OpText, true, 0, true, []byte("masked")), frames.RuleMaskedServer),
		frameCase("reserved-opcode", hello, wsFrame(ws.OpCode(0x3), true, 0, false, []byte("op3")), frames.RuleReservedOpcode),
		frameCase("rsv-without-extension", wsFrame(ws.OpText, true, 4, true, []byte("rsv1")), world, frames.RuleRsvNoExtension),
	}
	return cases
}

// faultUpstream is a raw TCP (or TLS) WebSocket upstream: /healthy/* echo
// frames, /fault/<name> run the case's upstream script.
type faultUpstream struct {
	t     *testing.T
	ln    net.Listener
	tls   *tls.Config
	cases map[string]*faultRun
	wg    sync.WaitGroup
}

// faultRun is one case's run: both peers, filled in as they go.
type faultRun struct {
	c        faultCase
	cli, up  *faultPeer
	upDone   chan struct{}
	cliDone  chan struct{}
	upStatus int
}

func startFaultUpstream(t *testing.T, tlsCfg *tls.Config, runs map[string]*faultRun) *faultUpstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &faultUpstream{t: t, ln: ln, tls: tlsCfg, cases: runs}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				u.serve(c.(*net.TCPConn))
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); u.wg.Wait() })
	return u
}

// alertConn lets the test feed a corrupt TLS record to the upstream's TLS
// stack, which then sends a real (encrypted) alert to the proxy.
type alertConn struct {
	net.Conn
	mu     sync.Mutex
	inject []byte
}

func (a *alertConn) Read(p []byte) (int, error) {
	a.mu.Lock()
	if len(a.inject) > 0 {
		n := copy(p, a.inject)
		a.inject = a.inject[n:]
		a.mu.Unlock()
		return n, nil
	}
	a.mu.Unlock()
	return a.Conn.Read(p)
}

func (u *faultUpstream) serve(raw *net.TCPConn) {
	var conn net.Conn = raw
	var ac *alertConn
	var tc *tls.Conn
	if u.tls != nil {
		ac = &alertConn{Conn: raw}
		tc = tls.Server(ac, u.tls)
		conn = tc
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	if strings.HasPrefix(req.URL.Path, "/healthy/") {
		io.WriteString(conn, response101(req.Header.Get("Sec-WebSocket-Key")))
		echoFrames(br, conn)
		return
	}
	run := u.cases[strings.TrimPrefix(req.URL.Path, "/fault/")]
	if run == nil {
		u.t.Errorf("upstream: unknown path %s", req.URL.Path)
		return
	}
	defer close(run.upDone)
	p := &faultPeer{t: u.t, conn: conn, c: raw, br: br}
	if tc != nil {
		p.alert = func() {
			junk := make([]byte, 32)
			rand.Read(junk)
			ac.mu.Lock()
			ac.inject = append([]byte{0x17, 0x03, 0x03, 0x00, 0x20}, junk...)
			ac.mu.Unlock()
			if _, err := tc.Read(make([]byte, 1)); err == nil {
				u.t.Errorf("tls upstream: corrupt record read without error")
			}
			time.Sleep(50 * time.Millisecond)
			raw.Close()
		}
	}
	run.up = p
	if !run.c.noUpgrade {
		io.WriteString(conn, response101(req.Header.Get("Sec-WebSocket-Key")))
	}
	run.c.up(u.t, p)
}

// echoFrames echoes every frame (unmasked) until a close frame, which it
// echoes before closing.
func echoFrames(br *bufio.Reader, conn net.Conn) {
	bw := bufio.NewWriter(conn)
	for {
		h, err := ws.ReadHeader(br)
		if err != nil {
			return
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(br, p); err != nil {
			return
		}
		if h.Masked {
			ws.Cipher(p, h.Mask, 0)
		}
		h.Masked = false
		ws.WriteHeader(bw, h)
		bw.Write(p)
		if bw.Flush() != nil || h.OpCode == ws.OpClose {
			return
		}
	}
}

// healthy runs n gorilla echo sessions until stop is closed, then closes
// each cleanly; it reports what each sent.
type healthy struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	sent map[string]int64 // path → messages sent and echoed
	errs []error
}

func startHealthy(t *testing.T, p *testProxy, n int) *healthy {
	h := &healthy{stop: make(chan struct{}), sent: map[string]int64{}}
	for i := 0; i < n; i++ {
		h.wg.Add(1)
		go func(i int) {
			defer h.wg.Done()
			path := fmt.Sprintf("/healthy/%d", i)
			msgs, err := healthySession(p, path, int64(i), h.stop)
			h.mu.Lock()
			h.sent[path] = msgs
			if err != nil {
				h.errs = append(h.errs, fmt.Errorf("%s: %w", path, err))
			}
			h.mu.Unlock()
		}(i)
	}
	return h
}

func healthySession(p *testProxy, path string, seed int64, stop chan struct{}) (int64, error) {
	c, _, err := p.dialer().Dial(p.url(path), nil)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	rnd := mrand.New(mrand.NewSource(seed))
	var n int64
	for {
		select {
		case <-stop:
			c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "done"))
			_, _, err := c.ReadMessage()
			if !websocket.IsCloseError(err, 1000) {
				return n, fmt.Errorf("close: %v", err)
			}
			return n, nil
		default:
		}
		size := rnd.Intn(2048)
		if rnd.Intn(20) == 0 {
			size = 65536 + rnd.Intn(1000)
		}
		msg := make([]byte, size)
		rnd.Read(msg)
		if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			return n, err
		}
		_, got, err := c.ReadMessage()
		if err != nil {
			return n, err
		}
		if !bytes.Equal(got, msg) {
			return n, fmt.Errorf("message %d: echo of %d bytes differs (%d bytes back)", n, len(msg), len(got))
		}
		n++
		time.Sleep(time.Duration(rnd.Intn(10)) * time.Millisecond)
	}
}

// runFaultClient is the client side of a case.
func runFaultClient(t *testing.T, p *testProxy, run *faultRun) {
	defer close(run.cliDone)
	raw, err := net.Dial("tcp", p.srv.Addr().String())
	if err != nil {
		t.Error(err)
		return
	}
	c := raw.(*net.TCPConn)
	defer c.Close()
	key := make([]byte, 16)
	rand.Read(key)
	fmt.Fprintf(c, "GET /fault/%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		run.c.name, p.srv.Addr(), base64.StdEncoding.EncodeToString(key))
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	status := -1
	resp, hsErr := http.ReadResponse(br, nil)
	if err := hsErr; err == nil {
		status = resp.StatusCode
		if !run.c.noUpgrade && status != 101 {
			t.Errorf("status %d", status)
			return
		}
	} else if !run.c.noUpgrade {
		t.Errorf("reading the 101: %v", err)
		return
	}
	fp := &faultPeer{t: t, conn: c, c: c, br: br, hsErr: hsErr}
	run.cli = fp
	run.c.cli(t, fp, status)
}

// TestFaultMatrix runs every fault case concurrently with 100 healthy echo
// sessions through the same proxy (the TLS case through a second proxy in
// front of a TLS upstream, at the same time).
func TestFaultMatrix(t *testing.T) {
	cases := faultCases()
	runs := map[string]*faultRun{}
	tlsRuns := map[string]*faultRun{}
	for _, c := range cases {
		r := &faultRun{c: c, upDone: make(chan struct{}), cliDone: make(chan struct{})}
		if c.tls {
			tlsRuns[c.name] = r
		} else {
			runs[c.name] = r
		}
	}
	up := startFaultUpstream(t, nil, runs)
	p := startTestProxy(t, "ws://"+up.ln.Addr().String(), false, nil)

	ca, err := LoadOrCreateCA(filepath.Join(t.TempDir(), "upca"))
	if err != nil {
		t.Fatal(err)
	}
	tup := startFaultUpstream(t, &tls.Config{GetCertificate: ca.GetCertificate("127.0.0.1")}, tlsRuns)
	tp := startTestProxy(t, "wss://"+tup.ln.Addr().String(), false, ca.Pool())

	const nHealthy = 100
	h := startHealthy(t, p, nHealthy)
	time.Sleep(200 * time.Millisecond) // the healthy sessions are under way

	t.Run("cases", func(t *testing.T) {
		for _, c := range cases {
			run := runs[c.name]
			px := p
			if c.tls {
				run, px = tlsRuns[c.name], tp
			}
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				go runFaultClient(t, px, run)
				for _, ch := range []chan struct{}{run.cliDone, run.upDone} {
					select {
					case <-ch:
					case <-time.After(20 * time.Second):
						t.Fatal("case did not finish")
					}
				}
				if run.cli == nil || run.up == nil {
					return
				}
				if run.c.exact {
					if !bytes.Equal(run.cli.got.Bytes(), run.up.sent.Bytes()) {
						t.Errorf("client got %d bytes, upstream sent %d (equal prefix: %v)", run.cli.got.Len(), run.up.sent.Len(),
							bytes.HasPrefix(run.up.sent.Bytes(), run.cli.got.Bytes()))
					}
					if !bytes.Equal(run.up.got.Bytes(), run.cli.sent.Bytes()) {
						t.Errorf("upstream got %d bytes, client sent %d", run.up.got.Len(), run.cli.sent.Len())
					}
				}
			})
		}
	})

	close(h.stop)
	h.wg.Wait()
	for _, err := range h.errs {
		t.Errorf("healthy session: %v", err)
	}
	p.waitRecords(int64(nHealthy + len(runs)))
	tp.waitRecords(int64(len(tlsRuns)))
	recs := append(p.records(), tp.records()...)

	byPath := map[string]*record.Session{}
	for i := range recs {
		r := &recs[i]
		path := r.Handshake.URI
		if byPath[path] != nil {
			t.Errorf("%s recorded twice", path)
		}
		byPath[path] = r
	}
	healthyOK := 0
	for path, n := range h.sent {
		r := byPath[path]
		if r == nil {
			t.Errorf("%s: no record", path)
			continue
		}
		cu, uc := r.Frames.ClientToUpstream, r.Frames.UpstreamToClient
		var bad []string
		for _, f := range r.Findings {
			if f.Severity != record.SevInfo {
				bad = append(bad, f.Rule)
			}
		}
		if r.Verdict != record.VerdictClean || len(bad) != 0 || cu.Binary != n || uc.Binary != n || cu.Close != 1 || uc.Close != 1 {
			t.Errorf("%s: verdict %s findings %v, frames %+v / %+v, want clean with %d messages each way", path, r.Verdict, bad, cu, uc, n)
			continue
		}
		healthyOK++
	}
	var total int64
	for _, n := range h.sent {
		total += n
	}
	t.Logf("healthy: %d/%d sessions clean and byte-exact, %d messages echoed", healthyOK, nHealthy, total)

	for _, c := range cases {
		r := byPath["/fault/"+c.name]
		if r == nil {
			t.Errorf("%s: no record", c.name)
			continue
		}
		var rules []string
		for _, f := range r.Findings {
			rules = append(rules, f.Rule)
		}
		ok := r.Verdict == c.verdict && r.End.First == c.first && r.End.How == c.how
		if c.finding != "" && !contains(rules, c.finding) {
			ok = false
		}
		if c.finding == "" {
			for _, rule := range rules {
				if strings.HasPrefix(rule, "frame-") {
					ok = false
				}
			}
		}
		run := runs[c.name]
		if c.tls {
			run = tlsRuns[c.name]
		}
		if c.exact && run.cli != nil && run.up != nil {
			if cu, uc := r.Frames.ClientToUpstream.Bytes, r.Frames.UpstreamToClient.Bytes; cu != int64(run.cli.sent.Len()) || uc != int64(run.up.sent.Len()) {
				t.Errorf("%s: frames bytes %d / %d, the peers sent %d / %d", c.name, cu, uc, run.cli.sent.Len(), run.up.sent.Len())
			}
		}
		if c.tls && !strings.Contains(r.End.Error, "tls: bad record MAC") {
			t.Errorf("%s: end.error %q, want the upstream's alert", c.name, r.End.Error)
		}
		if !ok {
			t.Errorf("%s: verdict %s first %s how %s (%s) findings %v; want %s %s %s finding %q", c.name, r.Verdict, r.End.First, r.End.How, r.End.Error, rules,
				c.verdict, c.first, c.how, c.finding)
		} else {
			t.Logf("%-32s verdict %-24s first %-8s how %-16s findings %v", c.name, r.Verdict, r.End.First, r.End.How, rules)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
