package report

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/wstap/wstap/internal/testkit"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/record"
)

// Secrets the test run's clients and platform sent; none may survive a bundle.
const (
	secretBearer    = "s3cr3t-TOKEN-abc"
	secretCookie    = "c00kie-VAL-77"
	secretSetCookie = "srv-c00kie-99"
	secretQuery     = "AT-9f8e7d"
	secretText      = "PAYLOAD-s3cr3t-msg"
	secretBinary    = "BIN-s3cr3t-blob"
	secretServer    = "SRV-s3cr3t-reply"
	secretBody      = "BODY-s3cr3t-401"
	secretKeylog    = "KEYLOG-s3cr3t-00"
	jwtSignature    = "c2lnbmF0dXJlLXNlY3JldA"
)

// bundleSecrets lists every secret string of the test run, in the forms a
// file could hold them.
func bundleSecrets() []string {
	return []string{secretBearer, secretCookie, secretSetCookie, secretQuery, secretText,
		secretBinary, base64.StdEncoding.EncodeToString([]byte(secretBinary)), secretServer,
		secretBody, secretKeylog, testJWT, jwtSignature}
}

var testStart = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// testRecords are the sessions of the test run: an upgraded session whose
// client sent every kind of secret, and a session the platform refused.
func testRecords() []record.Session {
	code := 1000
	return []record.Session{{
		ID: "s1", ClientAddr: "10.0.0.1:40000", UpstreamAddr: "10.0.0.2:80",
		Target: "ws://chat.example.com:80/chat?room=1&access_token=" + secretQuery,
		Start:  testStart, DurationMS: 5000,
		Handshake: record.Handshake{Status: 101, Method: "GET", Proto: "HTTP/1.1",
			URI: "/chat?room=1&access_token=" + secretQuery, LatencyMS: 12.5,
			RequestHeaders: []record.Header{{Name: "Host", Value: "chat.example.com"}, {Name: "Upgrade", Value: "websocket"},
				{Name: "Authorization", Value: "Bearer " + secretBearer}, {Name: "Cookie", Value: "sid=" + secretCookie + "; theme=dark"},
				{Name: "Sec-WebSocket-Protocol", Value: "chat, " + testJWT}},
			ResponseHeaders: []record.Header{{Name: "Upgrade", Value: "websocket"}, {Name: "Set-Cookie", Value: "srv=" + secretSetCookie + "; Path=/; HttpOnly"}},
			Subprotocol:     "chat"},
		Frames: record.Frames{
			ClientToUpstream: record.DirFrames{Frames: 5, Text: 2, Binary: 1, Continuation: 1, Ping: 1, Close: 1},
			UpstreamToClient: record.DirFrames{Frames: 3, Text: 1, Pong: 1, Close: 1}},
		Close: record.Closes{Client: &record.CloseFrame{Code: 1000, Reason: "bye", At: testStart.Add(4 * time.Second)},
			Upstream: &record.CloseFrame{Code: 1000, At: testStart.Add(4 * time.Second)}},
		End:             record.End{At: testStart.Add(5 * time.Second), First: record.SideClient, How: record.HowCloseHandshake},
		ClientCloseCode: &code, UpstreamCloseCode: &code, Verdict: record.VerdictClean, ConcurrentAtEnd: 2,
		Findings: []record.Finding{{Rule: "token-in-query", Severity: record.SevWarn, Detail: "access_token=" + secretQuery + " in the URL"}},
	}, {
		ID: "s2", ClientAddr: "10.0.0.3:40001", UpstreamAddr: "10.0.0.2:80",
		Target: "ws://chat.example.com:80/chat?token=" + secretQuery,
		Start:  testStart.Add(time.Second), DurationMS: 20,
		Handshake: record.Handshake{Status: 401, Method: "GET", Proto: "HTTP/1.1", URI: "/chat?token=" + secretQuery,
			RequestHeaders: []record.Header{{Name: "Authorization", Value: "Bearer " + secretBearer}}},
		End:     record.End{At: testStart.Add(time.Second + 20*time.Millisecond), First: record.SideUpstream, How: record.HowHandshakeRejects},
		Verdict: record.VerdictRejected, ConcurrentAtEnd: 1,
	}}
}

// testEvents are the events of the test run, as the recorder writes them.
func testEvents() []map[string]any {
	at := func(ms int) string {
		return testStart.Add(time.Duration(ms) * time.Millisecond).Format(time.RFC3339Nano)
	}
	ev := func(ms int, session, event string, kv ...any) map[string]any {
		m := map[string]any{"time": at(ms), "level": "info", "session": session, "event": event}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	c2u, u2c := "client_to_upstream", "upstream_to_client"
	return []map[string]any{
		ev(0, "s1", "handshake", "status", 101, "url", "/chat?access_token="+secretQuery,
			"request_headers", []map[string]string{{"name": "Authorization", "value": "Bearer " + secretBearer},
				{"name": "Cookie", "value": "sid=" + secretCookie}}),
		ev(100, "s1", "message", "dir", c2u, "opcode", 1, "len", 40, "data", `{"auth":"`+testJWT+`","msg":"`+secretText+`"}`),
		ev(200, "s1", "message", "dir", c2u, "opcode", 2, "len", 15, "data", base64.StdEncoding.EncodeToString([]byte(secretBinary))),
		ev(300, "s1", "message", "dir", u2c, "opcode", 1, "len", 16, "data", secretServer),
		ev(400, "s1", "message", "dir", c2u, "opcode", 1, "len", 20, "data", "part one "+secretText),
		ev(500, "s1", "ping", "dir", c2u, "len", 1),
		ev(510, "s1", "pong", "dir", u2c, "len", 1),
		ev(4000, "s1", "close", "dir", c2u, "code", 1000, "reason", "bye"),
		ev(4001, "s1", "close", "dir", u2c, "code", 1000, "reason", ""),
		ev(5000, "s1", "end", "first", "client", "how", "close-handshake", "error", "Authorization: Bearer "+secretBearer),
		ev(1020, "s2", "handshake", "status", 401, "url", "/chat?token="+secretQuery),
		ev(2000, "", "http", "method", "GET", "url", "http://api.example.com/v1/rooms?api_key="+secretQuery, "status", 429, "latency_ms", 8.5),
	}
}

// writeTestRun writes a run dir with every file a proxy writes.
func writeTestRun(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var sessions, events bytes.Buffer
	for _, r := range testRecords() {
		line, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		sessions.Write(append(line, '\n'))
	}
	for _, e := range testEvents() {
		line, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		events.Write(append(line, '\n'))
	}
	run := `{"version":"test-1.0","args":["proxy","--upstream","ws://chat.example.com/?access_token=` + secretQuery +
		`","--token","` + secretBearer + `"],"start":"2026-03-01T10:00:00Z"}`
	files := map[string][]byte{
		capture.SessionsFile: sessions.Bytes(), capture.EventsFile: events.Bytes(), capture.RunFile: []byte(run),
		capture.KeylogFile: []byte("CLIENT_RANDOM 0011 " + secretKeylog + "\n"), capture.PcapFile: testCapture(t),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// testFrame encodes one RFC 6455 frame; a non-nil mask masks it.
func testFrame(t *testing.T, fin bool, op ws.OpCode, payload string, mask []byte) []byte {
	t.Helper()
	h := ws.Header{Fin: fin, OpCode: op, Length: int64(len(payload))}
	p := []byte(payload)
	if mask != nil {
		h.Masked = true
		copy(h.Mask[:], mask)
		ws.Cipher(p, h.Mask, 0)
	}
	var buf bytes.Buffer
	if err := ws.WriteHeader(&buf, h); err != nil {
		t.Fatal(err)
	}
	buf.Write(p)
	return buf.Bytes()
}

// testConv builds the packets of one synthetic TCP conversation.
type testConv struct {
	t          *testing.T
	cli, srv   net.IP
	cport      uint16
	cseq, sseq uint32
	at         time.Time
	pkts       [][]byte
	times      []time.Time
}

func (c *testConv) send(fromServer bool, syn, ack, fin bool, payload []byte) {
	src, dst, sp, dp, seq, ackn := c.cli, c.srv, c.cport, uint16(80), &c.cseq, c.sseq
	if fromServer {
		src, dst, sp, dp, seq, ackn = c.srv, c.cli, 80, c.cport, &c.sseq, c.cseq
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src, DstIP: dst}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), Seq: *seq, Ack: ackn, SYN: syn, ACK: ack, FIN: fin, PSH: len(payload) > 0, Window: 65535}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		c.t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, tcp, gopacket.Payload(payload)); err != nil {
		c.t.Fatal(err)
	}
	*seq += uint32(len(payload))
	if syn || fin {
		*seq++
	}
	c.at = c.at.Add(time.Millisecond)
	c.pkts = append(c.pkts, bytes.Clone(buf.Bytes()))
	c.times = append(c.times, c.at)
}

func (c *testConv) open() {
	c.send(false, true, false, false, nil)
	c.send(true, true, true, false, nil)
	c.send(false, false, true, false, nil)
}

// testCapture is a pcapng of two conversations to port 80: an upgraded
// session whose upgrade request, frames (masked and not, split across
// segments, 16-bit length, fragmented) carry secrets, and a refused upgrade
// whose 401 body carries one.
func testCapture(t *testing.T) []byte {
	t.Helper()
	mask := []byte{0x11, 0x22, 0x33, 0x44}
	c := &testConv{t: t, cli: net.IPv4(10, 0, 0, 1).To4(), srv: net.IPv4(10, 0, 0, 2).To4(), cport: 40000,
		cseq: 1000, sseq: 5000, at: testStart}
	c.open()
	req := "GET /chat?room=1&access_token=" + secretQuery + " HTTP/1.1\r\nHost: chat.example.com\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, " + testJWT + "\r\n" +
		"Authorization: Bearer " + secretBearer + "\r\nCookie: sid=" + secretCookie + "; theme=dark\r\n\r\n"
	split := strings.Index(req, secretBearer) + 4 // inside the token
	c.send(false, false, true, false, []byte(req[:split]))
	c.send(false, false, true, false, []byte(req[split:]))
	c.send(true, false, true, false, []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"+
		"Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n"+
		"Set-Cookie: srv="+secretSetCookie+"; Path=/; HttpOnly\r\n\r\n"))
	text := testFrame(t, true, ws.OpText, `{"auth":"`+testJWT+`","msg":"`+secretText+`"}`, mask)
	c.send(false, false, true, false, text[:1]) // the frame header split
	c.send(false, false, true, false, text[1:9])
	c.send(false, false, true, false, text[9:])
	bin := testFrame(t, true, ws.OpBinary, secretBinary, mask)
	long := testFrame(t, true, ws.OpText, strings.Repeat(secretServer+" ", 10), nil) // 170 bytes: 16-bit length
	c.send(false, false, true, false, bin)
	c.send(true, false, true, false, append(testFrame(t, true, ws.OpText, secretServer, nil), long...))
	c.send(false, false, true, false, append(testFrame(t, false, ws.OpText, "part one ", mask),
		testFrame(t, true, ws.OpContinuation, secretText, mask)...))
	c.send(false, false, true, false, testFrame(t, true, ws.OpPing, "p", mask))
	c.send(true, false, true, false, testFrame(t, true, ws.OpPong, "p", nil))
	c.send(false, false, true, false, testFrame(t, true, ws.OpClose, "\x03\xe8bye", mask))
	c.send(true, false, true, false, testFrame(t, true, ws.OpClose, "\x03\xe8", nil))
	c.send(true, false, true, true, nil)
	c.send(false, false, true, true, nil)

	r := &testConv{t: t, cli: net.IPv4(10, 0, 0, 3).To4(), srv: net.IPv4(10, 0, 0, 2).To4(), cport: 40001,
		cseq: 7000, sseq: 9000, at: c.at}
	r.open()
	r.send(false, false, true, false, []byte("GET /chat?token="+secretQuery+" HTTP/1.1\r\nHost: chat.example.com\r\n"+
		"Upgrade: websocket\r\nAuthorization: Bearer "+secretBearer+"\r\n\r\n"))
	r.send(true, false, true, false, []byte("HTTP/1.1 401 Unauthorized\r\nContent-Length: 15\r\n\r\n"+secretBody))
	r.send(true, false, true, true, nil)

	var pkts [][]byte
	var times []time.Time
	for _, conv := range []*testConv{c, r} {
		pkts = append(pkts, conv.pkts...)
		times = append(times, conv.times...)
	}
	return testPcapng(t, pkts, times)
}

// testPcapng writes packets as an Ethernet pcapng.
func testPcapng(t *testing.T, pkts [][]byte, times []time.Time) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := pcapgo.NewNgWriter(&out, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pkts {
		ci := gopacket.CaptureInfo{Timestamp: times[i], CaptureLength: len(p), Length: len(p)}
		if err := w.WritePacket(ci, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// splitCapture rotates a capture as the proxy does: the first n packets in
// capture.pcapng, the rest in capture-0002.pcapng.
func splitCapture(t *testing.T, dir string, n int) {
	t.Helper()
	rd, err := pcapgo.NewNgReader(bytes.NewReader(testCapture(t)), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	var pkts [][]byte
	var times []time.Time
	for {
		data, ci, err := rd.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pkts, times = append(pkts, data), append(times, ci.Timestamp)
	}
	for name, part := range map[string][2]int{capture.PcapFile: {0, n}, "capture-0002.pcapng": {n, len(pkts)}} {
		data := testPcapng(t, pkts[part[0]:part[1]], times[part[0]:part[1]])
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// untar reads every regular file of a tar.gz.
func untar(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = b
	}
}

func makeBundle(t *testing.T, dir string, opts BundleOptions) map[string][]byte {
	t.Helper()
	var out bytes.Buffer
	if err := WriteBundle(openRun(t, dir), &out, opts); err != nil {
		t.Fatalf("WriteBundle: %v", err)
	}
	return untar(t, out.Bytes())
}

func TestBundleRedacts(t *testing.T) {
	dir := writeTestRun(t)
	files := makeBundle(t, dir, BundleOptions{})
	for _, name := range []string{bundleReadme, capture.SessionsFile, capture.EventsFile, capture.RunFile, bundleHAR,
		capture.PcapFile, bundleSummary, bundleJSON} {
		if len(files[name]) == 0 {
			t.Errorf("bundle has no %s (files: %v)", name, keys(files))
		}
	}
	if _, ok := files[capture.KeylogFile]; ok {
		t.Errorf("bundle has %s without IncludeKeylog", capture.KeylogFile)
	}
	for name, data := range files {
		for _, s := range bundleSecrets() {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s contains the secret %q", name, s)
			}
		}
	}
	if !bytes.Contains(files[capture.SessionsFile], []byte(`"Bearer [redacted]"`)) {
		t.Errorf("sessions.jsonl lost the Authorization scheme:\n%s", files[capture.SessionsFile])
	}
	if bytes.Contains(files[capture.EventsFile], []byte(`"data"`)) {
		t.Errorf("events.jsonl kept message data:\n%s", files[capture.EventsFile])
	}
	if n := bytes.Count(files[capture.EventsFile], []byte("\n")); n != len(testEvents()) {
		t.Errorf("events.jsonl has %d lines, want %d", n, len(testEvents()))
	}
	if !bytes.Contains(files[bundleReadme], []byte("tshark -r capture.pcapng -Y websocket")) {
		t.Errorf("README.txt does not say how to open the capture:\n%s", files[bundleReadme])
	}

	orig, err := os.ReadFile(filepath.Join(dir, capture.PcapFile))
	if err != nil {
		t.Fatal(err)
	}
	red := files[capture.PcapFile]
	if len(red) != len(orig) {
		t.Errorf("redacted capture is %d bytes, the original %d: lengths must be kept", len(red), len(orig))
	}
	checkRedactedFrames(t, readStreams(t, orig), readStreams(t, red))

	capFile := filepath.Join(t.TempDir(), capture.PcapFile)
	if err := os.WriteFile(capFile, red, 0o600); err != nil {
		t.Fatal(err)
	}
	origOut := tsharkDump(t, filepath.Join(dir, capture.PcapFile))
	if !strings.Contains(origOut, secretText) {
		t.Fatalf("tshark does not show the payload secret in the original capture; the check below would prove nothing:\n%s", origOut)
	}
	out := tsharkDump(t, capFile)
	for _, s := range bundleSecrets() {
		if strings.Contains(out, s) {
			t.Errorf("tshark shows the secret %q in the redacted capture", s)
		}
	}
	if got := strings.Count(out, "WebSocket"); got < 10 {
		t.Errorf("tshark decodes %d WebSocket mentions in the redacted capture, want the frames kept", got)
	}
}

func TestBundleIncludeOptions(t *testing.T) {
	dir := writeTestRun(t)
	files := makeBundle(t, dir, BundleOptions{IncludePayloads: true, IncludeKeylog: true})
	if !bytes.Contains(files[capture.KeylogFile], []byte(secretKeylog)) {
		t.Errorf("IncludeKeylog: keylog.txt missing or changed: %q", files[capture.KeylogFile])
	}
	if !bytes.Contains(files[capture.PcapFile], []byte(secretServer)) {
		t.Error("IncludePayloads: the server's unmasked payload is not in the capture")
	}
	if !bytes.Contains(files[capture.EventsFile], []byte(secretServer)) {
		t.Error("IncludePayloads: events.jsonl lost the message data")
	}
	for name, data := range files {
		for _, s := range []string{secretBearer, secretCookie, secretSetCookie, secretQuery, testJWT} {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s contains %q although only payloads were asked for", name, s)
			}
		}
	}
}

func TestBundleRotatedCapture(t *testing.T) {
	dir := writeTestRun(t)
	splitCapture(t, dir, 9) // inside the first text frame, between two of its segments
	files := makeBundle(t, dir, BundleOptions{})
	if len(files["capture-0002.pcapng"]) == 0 {
		t.Fatalf("bundle lacks capture-0002.pcapng: %v", keys(files))
	}
	for _, name := range []string{capture.PcapFile, "capture-0002.pcapng"} {
		for _, s := range bundleSecrets() {
			if bytes.Contains(files[name], []byte(s)) {
				t.Errorf("%s contains %q", name, s)
			}
		}
	}
	orig := readStreams(t, testCapture(t))
	got := readStreams(t, files[capture.PcapFile])
	for k, v := range readStreams(t, files["capture-0002.pcapng"]) {
		got[k] = append(got[k], v...)
	}
	for k, v := range orig {
		if len(got[k]) != len(v) {
			t.Errorf("stream %s: %d bytes across both files, want %d", k, len(got[k]), len(v))
		}
	}
	checkRedactedFrames(t, orig, got)
}

// openRun opens dir with the run dir reader.
func openRun(t *testing.T, dir string) *capture.RunDir {
	t.Helper()
	d, err := capture.OpenRunDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// checkRedactedFrames compares the TCP streams of an original and a redacted
// capture: every data-frame payload unmasks to 'x' with its length kept and
// control frames are untouched.
func checkRedactedFrames(t *testing.T, o, r map[string][]byte) {
	t.Helper()
	if len(o) != len(r) {
		t.Fatalf("%d streams in the redacted capture, %d in the original", len(r), len(o))
	}
	var data, control int
	for key, ob := range o {
		rb := r[key]
		if len(rb) != len(ob) {
			t.Errorf("stream %s: %d bytes, want %d", key, len(rb), len(ob))
			continue
		}
		i := bytes.Index(ob, []byte("\r\n\r\n")) + 4
		if !bytes.HasPrefix(ob, []byte("HTTP/1.1 101")) && !bytes.Contains(ob[:i], []byte("Upgrade: websocket")) {
			continue
		}
		if bytes.HasPrefix(ob, []byte("HTTP/1.1 401")) || key == "10.0.0.3:40001>10.0.0.2:80" {
			continue
		}
		or, rr := bytes.NewReader(ob[i:]), bytes.NewReader(rb[i:])
		for or.Len() > 0 {
			oh, err1 := ws.ReadHeader(or)
			rh, err2 := ws.ReadHeader(rr)
			if err1 != nil || err2 != nil {
				t.Fatalf("stream %s: frame headers: %v / %v", key, err1, err2)
			}
			if oh != rh {
				t.Errorf("stream %s: frame header changed: %+v -> %+v", key, oh, rh)
			}
			op, rp := make([]byte, oh.Length), make([]byte, rh.Length)
			io.ReadFull(or, op)
			io.ReadFull(rr, rp)
			if rh.Masked {
				ws.Cipher(op, oh.Mask, 0)
				ws.Cipher(rp, rh.Mask, 0)
			}
			if oh.OpCode.IsControl() {
				control++
				if !bytes.Equal(op, rp) {
					t.Errorf("stream %s: control frame %v payload changed: %q -> %q", key, oh.OpCode, op, rp)
				}
				continue
			}
			data++
			if want := bytes.Repeat([]byte("x"), len(op)); !bytes.Equal(rp, want) {
				t.Errorf("stream %s: data frame payload unmasks to %q, want all x", key, rp)
			}
		}
	}
	if data != 6 || control != 4 {
		t.Errorf("checked %d data and %d control frames, want 6 and 4", data, control)
	}
}

// readStreams reassembles the TCP payload of each direction of a capture,
// checking every TCP checksum on the way.
func readStreams(t *testing.T, capture []byte) map[string][]byte {
	t.Helper()
	rd, err := pcapgo.NewNgReader(bytes.NewReader(capture), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	streams := map[string][]byte{}
	for {
		data, _, err := rd.ReadPacketData()
		if err == io.EOF {
			return streams
		}
		if err != nil {
			t.Fatal(err)
		}
		p := gopacket.NewPacket(data, layers.LinkTypeEthernet, gopacket.Default)
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if ip == nil || tcp == nil {
			t.Fatalf("packet is not TCP/IPv4: %v", p)
		}
		seg := bytes.Clone(ip.Payload)
		sum := binary.BigEndian.Uint16(seg[16:18])
		binary.BigEndian.PutUint16(seg[16:18], 0)
		flow := pcapFlow{}
		flow.src, flow.dst = addrOf(ip.SrcIP), addrOf(ip.DstIP)
		if want := tcpChecksum(flow, seg); sum != want {
			t.Errorf("TCP checksum %#04x, want %#04x", sum, want)
		}
		key := ip.SrcIP.String() + ":" + tcp.SrcPort.String() + ">" + ip.DstIP.String() + ":" + tcp.DstPort.String()
		key = strings.ReplaceAll(key, "(http)", "")
		streams[key] = append(streams[key], tcp.Payload...)
	}
}

// tsharkDump is tshark's verbose decode and hex dump of a capture, where the
// WebSocket dissector shows unmasked payloads.
func tsharkDump(t *testing.T, path string) string {
	t.Helper()
	tshark := testkit.NeedTool(t, "tshark")
	out, err := exec.Command(tshark, "-r", path, "-o", "tcp.check_checksum:TRUE", "-V", "-x").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark -r %s: %v\n%s", path, err, out)
	}
	if strings.Contains(string(out), "Checksum Status: Bad") {
		t.Errorf("tshark reports bad TCP checksums in %s", path)
	}
	return string(out)
}

func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip.To4())
	return a
}

func keys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// TestBundleHAROnePass: the bundle gathers session.har while it redacts
// sessions.jsonl and events.jsonl (each read once), and it is the HAR that
// wstap har writes of the run dir, byte for byte, with and without payloads.
func TestBundleHAROnePass(t *testing.T) {
	for _, dir := range []string{writeTestRun(t), filepath.Join("..", "..", "testdata", "rundir", "demo")} {
		for _, payloads := range []bool{false, true} {
			files := makeBundle(t, dir, BundleOptions{IncludePayloads: payloads})
			var want bytes.Buffer
			if err := WriteHAR(&want, openRun(t, dir), HAROptions{IncludePayloads: payloads}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(files[bundleHAR], want.Bytes()) {
				t.Errorf("%s, payloads %v: the bundle's session.har (%d bytes) is not WriteHAR's (%d bytes)",
					dir, payloads, len(files[bundleHAR]), want.Len())
			}
			if !bytes.Contains(want.Bytes(), []byte(`"_resourceType": "websocket"`)) {
				t.Errorf("%s: no session in the HAR", dir)
			}
		}
	}
}
