package proxy

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/record"
	"github.com/wstap/wstap/internal/testkit"
)

// Live tests of issue 5 (the decrypted pcapng): sessions through the real
// proxy with a real capture.Pcap as its Tap, read back with tshark.

// pcapUpstream is a gorilla upstream for the capture tests: it pings the
// client once, echoes every message (fragmented ones whole), and answers a
// close frame with the same code and the reason "server bye".
func pcapUpstream(t *testing.T, tlsOn bool) (addr string, pool *x509.CertPool) {
	t.Helper()
	wsURL, pool := testkit.WSServer(t, tlsOn, nil, func(c *websocket.Conn) {
		c.SetCloseHandler(func(code int, _ string) error {
			return c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, "server bye"), time.Now().Add(time.Second))
		})
		if err := c.WriteControl(websocket.PingMessage, []byte("srv-ping"), time.Now().Add(time.Second)); err != nil {
			return
		}
		echo(c)
	})
	u, _ := url.Parse(wsURL)
	return u.Host, pool
}

// pcapClient opens a WebSocket session through the forward proxy at proxyAddr
// to target (host:port) by hand: CONNECT, TLS when tlsOn, the upgrade.
func pcapClient(t *testing.T, proxyAddr, target string, tlsOn bool) *rawConn {
	t.Helper()
	conn := connectTunnel(t, proxyAddr, target)
	if tlsOn {
		host, _, _ := net.SplitHostPort(target)
		tc := tls.Client(conn, &tls.Config{ServerName: host, InsecureSkipVerify: true})
		conn = tc
	}
	c := &rawConn{Conn: conn, br: bufio.NewReader(conn)}
	req, _ := rawUpgradeRequest(target, "/pcap")
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	if status, _, _, err := c.readResponse(); err != nil || status != 101 {
		t.Fatalf("upgrade through %s to %s: %d %v", proxyAddr, target, status, err)
	}
	return c
}

// expectFrame reads a frame and checks its opcode and payload.
func expectFrame(t *testing.T, c *rawConn, op byte, payload []byte) {
	t.Helper()
	b0, p, masked, err := c.readFrame()
	if err != nil {
		t.Fatalf("reading frame (want opcode %d): %v", op, err)
	}
	if b0&0x0f != op || b0&0x80 == 0 || masked || !bytes.Equal(p, payload) {
		t.Fatalf("frame %#x %q masked %v, want opcode %d %q", b0, p, masked, op, payload)
	}
}

// chat runs every kind of frame through a session: the upstream's ping and
// the client's pong, text, binary (a 126-length header), a message in three
// fragments, a client ping, an unsolicited pong and a close handshake with
// code and reason.
func chat(t *testing.T, c *rawConn, code int, reason string) {
	t.Helper()
	expectFrame(t, c, 0x9, []byte("srv-ping"))
	c.Write(rawFrame(true, 0, 0xA, true, []byte("srv-ping")))
	c.Write(rawFrame(true, 0, 0x1, true, []byte("hello")))
	expectFrame(t, c, 0x1, []byte("hello"))
	bin := make([]byte, 300)
	rand.Read(bin)
	c.Write(rawFrame(true, 0, 0x2, true, bin))
	expectFrame(t, c, 0x2, bin)
	c.Write(rawFrame(false, 0, 0x1, true, []byte("frag-1 ")))
	c.Write(rawFrame(false, 0, 0x0, true, []byte("frag-2 ")))
	c.Write(rawFrame(true, 0, 0x0, true, []byte("frag-3")))
	expectFrame(t, c, 0x1, []byte("frag-1 frag-2 frag-3"))
	c.Write(rawFrame(true, 0, 0x9, true, []byte("cli-ping")))
	expectFrame(t, c, 0xA, []byte("cli-ping"))
	c.Write(rawFrame(true, 0, 0xA, true, []byte("unsolicited")))
	c.Write(rawFrame(true, 0, 0x8, true, ws.NewCloseFrameBody(ws.StatusCode(code), reason)))
	expectFrame(t, c, 0x8, ws.NewCloseFrameBody(ws.StatusCode(code), "server bye"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, c.br) // the upstream's FIN, mirrored
	c.Close()
}

// endingUpstream answers the upgrade, sends one text frame and then ends TCP
// without a close frame: with a RST when rst, else with a FIN (and it closes
// once the other side has closed too).
func endingUpstream(t *testing.T, ip string, rst bool) string {
	t.Helper()
	return testkit.Listen(t, ip, func(nc net.Conn) {
		c := &rawConn{Conn: nc, br: bufio.NewReader(nc)}
		_, hdr, err := c.readRequest()
		if err != nil {
			return
		}
		c.Write([]byte(response101(hdr.Get("Sec-WebSocket-Key"))))
		c.Write(rawFrame(true, 0, 0x1, false, []byte("going away now")))
		time.Sleep(50 * time.Millisecond)
		if rst {
			nc.(*net.TCPConn).SetLinger(0)
			return
		}
		nc.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, c.br)
	})
}

// TestIntegrationPcapTshark: sessions with every kind of frame on a ws and
// a wss upstream, one ended by an upstream RST and one by an upstream FIN, go
// through forward mode with capture on. tshark decodes the pcapng with no
// option: each session is one TCP conversation between the client's and the
// upstream's addresses, its websocket frames per opcode are those of
// sessions.jsonl, its close codes and reasons are the records', and the RST
// and the FIN come from the upstream that sent them (wstap's mirrors are not
// written). With --pcap-legs both, every frame is there twice, once per leg.
func TestIntegrationPcapTshark(t *testing.T) {
	t.Parallel()
	testkit.NeedTool(t, "tshark")
	for _, both := range []bool{false, true} {
		t.Run(fmt.Sprintf("both=%v", both), func(t *testing.T) { integrationPcap(t, both) })
	}
}

func integrationPcap(t *testing.T, both bool) {
	wsAddr, _ := pcapUpstream(t, false)
	wssAddr, pool := pcapUpstream(t, true)
	rstAddr := endingUpstream(t, "127.0.0.2", true)
	finAddr := endingUpstream(t, "127.0.0.3", false)
	pcapDir := t.TempDir()
	pc, err := capture.OpenPcap(pcapDir, capture.PcapOptions{BothLegs: both})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			pc.Close()
		}
	})
	p := startForwardProxy(t, func(c *Config) { c.UpstreamCAs = pool; c.Tap = pc })
	proxyAddr := p.srv.Addr().String()

	var wg sync.WaitGroup
	run := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }
	run(func() { chat(t, pcapClient(t, proxyAddr, wsAddr, false), 4001, "client done (ws)") })
	run(func() { chat(t, pcapClient(t, proxyAddr, wssAddr, true), 4002, "client done (wss)") })
	run(func() {
		c := pcapClient(t, proxyAddr, rstAddr, false)
		expectFrame(t, c, 0x1, []byte("going away now"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, c.br); !isReset(err) {
			t.Errorf("client after the upstream's RST: %v, want a reset", err)
		}
		c.Close()
	})
	run(func() {
		c := pcapClient(t, proxyAddr, finAddr, false)
		expectFrame(t, c, 0x1, []byte("going away now"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, c.br); err != nil {
			t.Errorf("client after the upstream's FIN: %v, want EOF", err)
		}
		c.Close()
	})
	wg.Wait()
	p.waitRecords(4)
	recs := p.records()
	closed = true
	if err := pc.Close(); err != nil {
		t.Fatal(err)
	}
	if d := pc.Dropped(); d != 0 {
		t.Errorf("pcap dropped %d records", d)
	}
	file := filepath.Join(pcapDir, "capture.pcapng")
	copies := int64(1)
	if both {
		copies = 2
	}

	// Frames per opcode: the records summed over both directions, each
	// frame written once per conversation of its session.
	want := map[int]int64{}
	byTarget := map[string]*record.Session{}
	for i := range recs {
		r := &recs[i]
		u, _ := url.Parse(r.Target)
		byTarget[u.Host] = r
		for _, d := range []record.DirFrames{r.Frames.ClientToUpstream, r.Frames.UpstreamToClient} {
			want[0] += copies * d.Continuation
			want[1] += copies * d.Text
			want[2] += copies * d.Binary
			want[8] += copies * d.Close
			want[9] += copies * d.Ping
			want[10] += copies * d.Pong
		}
	}
	got := testkit.TsharkOpcodes(t, file)
	for op := range 11 {
		if int64(got[op]) != want[op] {
			t.Errorf("opcode %d: tshark counts %d frames, sessions.jsonl %d (×%d)", op, got[op], want[op], copies)
		}
	}
	for _, op := range []int{0, 1, 2, 8, 9, 10} {
		if want[op] == 0 {
			t.Errorf("no frame of opcode %d in the run", op)
		}
	}
	t.Logf("websocket frames per opcode, tshark: %v; records ×%d: %v", got, copies, want)

	// Close codes and reasons, as tshark reads them, against the records.
	var gotCloses, wantCloses []string
	for _, row := range testkit.TsharkFields(t, file, "websocket.opcode == 8", "websocket.payload.close.status_code", "websocket.payload.close.reason") {
		gotCloses = append(gotCloses, row[0]+" "+row[1])
	}
	for _, r := range recs {
		for _, c := range []*record.CloseFrame{r.Close.Client, r.Close.Upstream} {
			for range copies {
				if c != nil {
					wantCloses = append(wantCloses, fmt.Sprintf("%d %s", c.Code, c.Reason))
				}
			}
		}
	}
	sort.Strings(gotCloses)
	sort.Strings(wantCloses)
	if strings.Join(gotCloses, "|") != strings.Join(wantCloses, "|") || len(wantCloses) != 4*int(copies) {
		t.Errorf("close frames: tshark %q, records %q", gotCloses, wantCloses)
	}
	checkPcapEnds(t, file, proxyAddr, byTarget[rstAddr], byTarget[finAddr], both)
}

// checkPcapEnds checks where the capture shows the upstreams' RST and FIN:
// sent by the upstream (127.0.0.2 and 127.0.0.3, written as port 80) to the
// client's address, and with both legs also by wstap on the client leg.
func checkPcapEnds(t *testing.T, file, proxyAddr string, rstRec, finRec *record.Session, both bool) {
	t.Helper()
	if rstRec == nil || rstRec.End.How != record.HowReset || rstRec.End.First != record.SideUpstream || rstRec.Verdict != record.VerdictAbnormalUp {
		t.Fatalf("RST session record %+v", rstRec)
	}
	listenIP, _, _ := net.SplitHostPort(proxyAddr)
	rstCliIP, rstCliPort, _ := net.SplitHostPort(rstRec.ClientAddr)
	rsts := testkit.TsharkFields(t, file, "tcp.flags.reset == 1", "ip.src", "tcp.srcport", "ip.dst", "tcp.dstport")
	var fromUp, fromProxy int
	for _, r := range rsts {
		switch {
		case r[0] == "127.0.0.2" && r[1] == "80" && (both || r[2] == rstCliIP && r[3] == rstCliPort):
			fromUp++
		case both && r[0] == listenIP && r[1] == "80" && r[2] != "127.0.0.2":
			fromProxy++
		default:
			t.Errorf("RST from %s:%s to %s:%s: want only the upstream's (to the client %s) and, with both legs, its mirror",
				r[0], r[1], r[2], r[3], rstRec.ClientAddr)
		}
	}
	wantProxy := 0
	if both {
		wantProxy = 1
	}
	if fromUp != 1 || fromProxy != wantProxy {
		t.Errorf("RSTs %v: want one from the upstream 127.0.0.2:80 and %d from wstap to the client", rsts, wantProxy)
	}

	// The FIN: the upstream (127.0.0.3) sent the first FIN of its session
	// (of its leg, with both legs), and wstap the first of the client leg.
	if finRec == nil || finRec.End.How != record.HowEOF || finRec.End.First != record.SideUpstream {
		t.Fatalf("FIN session record %+v", finRec)
	}
	fins := testkit.TsharkFields(t, file, "tcp.flags.fin == 1", "tcp.stream", "ip.src", "tcp.srcport", "ip.dst", "tcp.dstport")
	first := map[string][]string{} // stream → its first FIN
	for _, r := range fins {
		if _, ok := first[r[0]]; !ok {
			first[r[0]] = r[1:]
		}
	}
	_, cliPort, _ := net.SplitHostPort(finRec.ClientAddr)
	var upLeg, cliLeg []string
	for _, f := range first {
		if f[0] == "127.0.0.3" || f[2] == "127.0.0.3" {
			upLeg = f
		} else if f[1] == cliPort || f[3] == cliPort {
			cliLeg = f
		}
	}
	if upLeg == nil || upLeg[0] != "127.0.0.3" || upLeg[1] != "80" {
		t.Errorf("first FIN of the upstream's conversation %v, want from the upstream 127.0.0.3:80 (all: %v)", upLeg, fins)
	}
	if !both {
		if upLeg != nil && upLeg[3] != cliPort {
			t.Errorf("first FIN of the session %v, want to the client port %s", upLeg, cliPort)
		}
		if cliLeg != nil {
			t.Errorf("a second conversation %v for the FIN session: want one per session", cliLeg)
		}
		return
	}
	if cliLeg == nil || cliLeg[1] != "80" || cliLeg[3] != cliPort {
		t.Errorf("first FIN of the client leg %v, want from wstap (port 80) to the client port %s (all: %v)", cliLeg, cliPort, fins)
	}
}

// BenchmarkRelayCapture: 16 KiB binary messages echoed through the proxy
// with the pcapng capture on, and with NopTap (--pcap=false). MB/s counts
// the message once per round trip.
func BenchmarkRelayCapture(b *testing.B) {
	for _, capOn := range []bool{true, false} {
		name := "nop"
		if capOn {
			name = "capture"
		}
		b.Run(name, func(b *testing.B) { benchRelay(b, capOn) })
	}
}

func benchRelay(b *testing.B, capOn bool) {
	up := websocket.Upgrader{ReadBufferSize: 32 << 10, WriteBufferSize: 32 << 10}
	ts := httptest.NewServer(testkit.Handler(&up, echo))
	defer ts.Close()
	dir := b.TempDir()
	rec, err := capture.OpenRecorder(filepath.Join(dir, "run"), capture.RunInfo{Version: "bench"}, 0, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	u, _ := url.Parse("ws" + strings.TrimPrefix(ts.URL, "http"))
	cfg := Config{Listen: "127.0.0.1:0", Upstream: u, Recorder: rec, Log: zerolog.Nop()}
	var pc *capture.Pcap
	if capOn {
		if pc, err = capture.OpenPcap(filepath.Join(dir, "run"), capture.PcapOptions{}); err != nil {
			b.Fatal(err)
		}
		cfg.Tap = pc
	}
	srv, err := Start(cfg)
	if err != nil {
		b.Fatal(err)
	}
	d := websocket.Dialer{ReadBufferSize: 32 << 10, WriteBufferSize: 32 << 10}
	c, _, err := d.Dial("ws://"+srv.Addr().String()+"/bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 16<<10)
	rand.Read(msg)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	c.ReadMessage()
	c.Close()
	stopBenchProxy(b, srv, rec, pc)
}
