package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/wstap/wstap/internal/testkit"
)

// pcapStep is one direction's bytes in a scripted session.
type pcapStep struct {
	fromServer bool
	b          []byte
}

// pcapScript is a WebSocket session as bytes, with what tshark must find in it.
type pcapScript struct {
	steps  []pcapStep
	counts map[int]int // frames per opcode
	closes []string    // "code reason" of every close frame, in order
}

const pcapUpgradeRequest = "GET /chat?room=1 HTTP/1.1\r\nHost: platform.example:9443\r\nUpgrade: websocket\r\n" +
	"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
	"Sec-WebSocket-Protocol: chat\r\n\r\n"

const pcapUpgradeResponse = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n"

// add appends one frame to the pcapScript; client frames are masked (RFC 6455 §5.3).
func (s *pcapScript) add(t testing.TB, fromServer bool, op ws.OpCode, fin bool, p []byte) {
	t.Helper()
	f := ws.NewFrame(op, fin, p)
	if !fromServer {
		f = ws.MaskFrameWith(f, [4]byte{0x11, 0x22, 0x33, byte(len(s.steps))})
	}
	var buf bytes.Buffer
	if err := ws.WriteFrame(&buf, f); err != nil {
		t.Fatalf("writing %v frame: %v", op, err)
	}
	if s.counts == nil {
		s.counts = map[int]int{}
	}
	s.counts[int(op)]++
	if op == ws.OpClose {
		code, reason := ws.ParseCloseFrameData(p)
		s.closes = append(s.closes, fmt.Sprintf("%d %s", code, reason))
	}
	s.steps = append(s.steps, pcapStep{fromServer: fromServer, b: buf.Bytes()})
}

// pcapChatScript is a session with every kind of frame both ways.
func pcapChatScript(t testing.TB) *pcapScript {
	s := &pcapScript{steps: []pcapStep{{false, []byte(pcapUpgradeRequest)}, {true, []byte(pcapUpgradeResponse)}}}
	s.add(t, false, ws.OpText, true, []byte("hello platform"))
	s.add(t, false, ws.OpBinary, true, bytes.Repeat([]byte{0xab}, 300))
	s.add(t, false, ws.OpText, false, []byte("part one, "))
	s.add(t, false, ws.OpPing, true, []byte("between fragments"))
	s.add(t, false, ws.OpContinuation, false, []byte("part two, "))
	s.add(t, false, ws.OpContinuation, true, []byte("part three"))
	s.add(t, true, ws.OpPong, true, []byte("between fragments"))
	s.add(t, true, ws.OpText, true, []byte(`{"event":"welcome"}`))
	s.add(t, true, ws.OpBinary, true, bytes.Repeat([]byte{0x5a}, 70000)) // 64-bit length, two segments
	s.add(t, true, ws.OpPing, true, []byte("keepalive"))
	s.add(t, false, ws.OpPong, true, []byte("keepalive"))
	s.add(t, false, ws.OpClose, true, ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye"))
	s.add(t, true, ws.OpClose, true, ws.NewCloseFrameBody(ws.StatusGoingAway, "server restarting"))
	return s
}

// pcapFeed writes the pcapScript on legs, cut into chunks of changing sizes so that
// frame headers straddle chunks.
func pcapFeed(p Tap, session string, legs Leg, s *pcapScript, at time.Time) time.Time {
	sizes := []int{1, 7, 100, 3, 4096, 13, 32 << 10}
	k := 0
	for _, st := range s.steps {
		for b := st.b; len(b) > 0; k++ {
			n := min(len(b), sizes[k%len(sizes)])
			at = at.Add(time.Millisecond)
			p.Data(session, legs, st.fromServer, at, b[:n])
			b = b[n:]
		}
	}
	return at
}

// pcapConv returns a session's addresses.
func pcapConv(session string, client, listen, local, upstream string) *Conv {
	a := func(s string) *net.TCPAddr {
		if s == "" {
			return nil
		}
		return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s))
	}
	return &Conv{Session: session, Client: a(client), Listen: a(listen), Local: a(local), Upstream: a(upstream)}
}

// pcapRunTool runs an outside program and fails on an error or on anything it
// writes to stderr, apart from Wireshark's note about running as root.
func pcapRunTool(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(testkit.NeedTool(t, name), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var warn []string
	for _, line := range strings.Split(stderr.String(), "\n") {
		if line != "" && !strings.HasPrefix(line, "Running as user") {
			warn = append(warn, line)
		}
	}
	if err != nil || len(warn) > 0 {
		t.Fatalf("%s %s: %v; stderr: %s", name, strings.Join(args, " "), err, strings.Join(warn, "\n"))
	}
	return stdout.String()
}

// checkPcapClean fails when capinfos or tshark warn about file, when a checksum
// is wrong, a packet is malformed or TCP analysis flags anything.
func checkPcapClean(t testing.TB, file string) {
	t.Helper()
	pcapRunTool(t, "capinfos", file)
	if rows := testkit.TsharkFields(t, file, "tcp.checksum.status != 1 || ip.checksum.status == 0 || _ws.malformed || tcp.analysis.flags",
		"frame.number", "_ws.expert.message"); len(rows) > 0 {
		t.Errorf("%s: %d suspicious packets, first: %v", file, len(rows), rows[0])
	}
}

// pcapPkt is a decoded packet of a capture.
type pcapPkt struct {
	src, dst      netip.AddrPort
	seq, ack      uint32
	syn, fin, rst bool
	payload       int // captured TCP payload bytes
	comment       bool
}

// readPcapPackets decodes every packet of a capture file with gopacket.
func readPcapPackets(t testing.TB, file string) []pcapPkt {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatalf("reading %s: %v", file, err)
	}
	var out []pcapPkt
	for {
		data, _, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("reading %s: %v", file, err)
		}
		p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.NoCopy)
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if tcp == nil {
			t.Fatalf("%s: packet %d has no TCP layer: %v", file, len(out)+1, p)
		}
		src, _ := netip.AddrFromSlice(p.NetworkLayer().NetworkFlow().Src().Raw())
		dst, _ := netip.AddrFromSlice(p.NetworkLayer().NetworkFlow().Dst().Raw())
		out = append(out, pcapPkt{
			src: netip.AddrPortFrom(src, uint16(tcp.SrcPort)), dst: netip.AddrPortFrom(dst, uint16(tcp.DstPort)),
			seq: tcp.Seq, ack: tcp.Ack, syn: tcp.SYN, fin: tcp.FIN, rst: tcp.RST, payload: len(tcp.Payload),
		})
	}
}

func mustOpenPcap(t testing.TB, dir string, opts PcapOptions) *Pcap {
	t.Helper()
	p, err := OpenPcap(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustClosePcap(t testing.TB, p *Pcap) {
	t.Helper()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if n := p.Dropped(); n != 0 {
		t.Fatalf("%d records dropped", n)
	}
}

var pcapT0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// TestPcapTsharkDecodesEveryFrame: two sessions, over IPv4 ended by FINs
// and over IPv6 ended by the upstream's RST, decode in tshark frame by
// frame: once per session (the default), or once per leg with BothLegs.
func TestPcapTsharkDecodesEveryFrame(t *testing.T) {
	testkit.NeedTool(t, "tshark")
	for _, both := range []bool{false, true} {
		t.Run(fmt.Sprintf("both=%v", both), func(t *testing.T) { pcapDecodesEveryFrame(t, both) })
	}
}

func pcapDecodesEveryFrame(t *testing.T, both bool) {
	dir := t.TempDir()
	p := mustOpenPcap(t, dir, PcapOptions{BothLegs: both})
	s := pcapChatScript(t)

	// Session "fin": ends with close frames, then the upstream's FIN, then the
	// client's, each mirrored by wstap on the other leg.
	c := pcapConv("fin", "10.0.0.5:51000", "127.0.0.1:8080", "127.0.0.1:52000", "192.0.2.10:9443")
	p.Open(c, LegClient, pcapT0)
	p.Open(c, LegUpstream, pcapT0.Add(time.Millisecond))
	at := pcapFeed(p, "fin", LegBoth, s, pcapT0)
	p.End("fin", LegBoth, true, false, at.Add(time.Millisecond))
	p.End("fin", LegBoth, false, false, at.Add(2*time.Millisecond))
	p.Forget("fin")

	// Session "rst": same frames over IPv6, then the upstream resets and wstap mirrors it.
	c6 := pcapConv("rst", "[2001:db8::5]:51001", "[2001:db8::1]:8443", "[2001:db8::1]:52001", "[2001:db8::10]:443")
	p.Open(c6, LegBoth, pcapT0)
	at = pcapFeed(p, "rst", LegBoth, s, pcapT0)
	p.End("rst", LegUpstream, true, true, at.Add(time.Millisecond))
	p.End("rst", LegClient, true, true, at.Add(time.Millisecond))
	p.Forget("rst")
	mustClosePcap(t, p)

	file := filepath.Join(dir, PcapFile)
	checkPcapClean(t, file)

	copies := 2 // two sessions
	wantFins := [][]string{{"192.0.2.10", "80"}, {"10.0.0.5", "51000"}}
	wantRsts := [][]string{{"2001:db8::10", "80"}}
	wantComments := []string{"client to upstream: 10.0.0.5:51000 -> 192.0.2.10:9443",
		"relayed by wstap, listening on 127.0.0.1:8080, from 127.0.0.1:52000",
		"client to upstream: [2001:db8::5]:51001 -> [2001:db8::10]:443"}
	if both {
		copies = 4 // two legs each
		wantFins = [][]string{{"127.0.0.1", "80"}, {"192.0.2.10", "80"}, {"10.0.0.5", "51000"}, {"127.0.0.1", "52000"}}
		wantRsts = [][]string{{"2001:db8::10", "80"}, {"2001:db8::1", "80"}}
		wantComments = []string{"client leg: 10.0.0.5:51000 -> 127.0.0.1:8080", "upstream leg: 127.0.0.1:52000 -> 192.0.2.10:9443",
			"upstream leg: [2001:db8::1]:52001 -> [2001:db8::10]:443"}
	}
	got := testkit.TsharkOpcodes(t, file)
	for op, n := range s.counts {
		if want := copies * n; got[op] != want {
			t.Errorf("opcode %d: tshark found %d frames, want %d", op, got[op], want)
		}
	}
	if len(got) != len(s.counts) {
		t.Errorf("tshark opcodes %v, want the keys of %v", got, s.counts)
	}

	var closes []string
	for _, row := range testkit.TsharkFields(t, file, "websocket.opcode == 8", "websocket.payload.close.status_code", "websocket.payload.close.reason") {
		closes = append(closes, row[0]+" "+row[1])
	}
	want := repeatStrings(s.closes, copies)
	sort.Strings(closes)
	sort.Strings(want)
	if strings.Join(closes, "|") != strings.Join(want, "|") {
		t.Errorf("close frames: tshark %q, want %q", closes, want)
	}

	// The FINs come from the upstream first, then from the client; with both
	// legs, wstap's mirrors follow each.
	fins := testkit.TsharkFields(t, file, "tcp.flags.fin == 1", "ip.src", "tcp.srcport")
	if fmt.Sprint(fins) != fmt.Sprint(wantFins) {
		t.Errorf("FINs from %v, want %v", fins, wantFins)
	}
	rsts := testkit.TsharkFields(t, file, "tcp.flags.reset == 1", "ipv6.src", "tcp.srcport")
	if fmt.Sprint(rsts) != fmt.Sprint(wantRsts) {
		t.Errorf("RSTs from %v, want %v", rsts, wantRsts)
	}

	// The real addresses are in the SYN comments.
	comments := testkit.TsharkFields(t, file, "frame.comment", "frame.comment")
	joined := fmt.Sprint(comments)
	for _, w := range wantComments {
		if !strings.Contains(joined, w) {
			t.Errorf("comments %s lack %q", joined, w)
		}
	}
	if len(comments) != copies {
		t.Errorf("%d commented packets, want one SYN per conversation (%d)", len(comments), copies)
	}
}

func repeatStrings(s []string, n int) []string {
	var out []string
	for range n {
		out = append(out, s...)
	}
	return out
}

func TestPcapLargeMessageReassembled(t *testing.T) {
	testkit.NeedTool(t, "tshark")
	dir := t.TempDir()
	p := mustOpenPcap(t, dir, PcapOptions{})
	const size = 16 << 20
	s := &pcapScript{steps: []pcapStep{{false, []byte(pcapUpgradeRequest)}, {true, []byte(pcapUpgradeResponse)}}}
	s.add(t, true, ws.OpBinary, true, bytes.Repeat([]byte("0123456789abcdef"), size/16))
	s.add(t, false, ws.OpText, true, []byte("got it"))
	p.Open(pcapConv("big", "10.0.0.5:51000", "127.0.0.1:8080", "127.0.0.1:52000", "192.0.2.10:9443"), LegBoth, pcapT0)
	pcapFeed(p, "big", LegBoth, s, pcapT0)
	p.Forget("big")
	mustClosePcap(t, p)

	file := filepath.Join(dir, PcapFile)
	pcapRunTool(t, "capinfos", file)
	rows := testkit.TsharkFields(t, file, "websocket", "websocket.opcode", "websocket.payload_length", "websocket.payload_length_ext_64")
	var lens []string
	for _, r := range rows {
		if r[1] == "127" { // RFC 6455 §5.2: the 64-bit extended length follows
			r[1] = r[2]
		}
		lens = append(lens, r[0]+":"+r[1])
	}
	want := []string{"2:" + strconv.Itoa(size), "1:6"} // once: one conversation per session
	sort.Strings(lens)
	sort.Strings(want)
	if fmt.Sprint(lens) != fmt.Sprint(want) {
		t.Errorf("tshark frames (opcode:length) %v, want %v", lens, want)
	}
	for _, pk := range readPcapPackets(t, file) {
		if pk.payload > maxSegment {
			t.Fatalf("segment of %d bytes, over %d", pk.payload, maxSegment)
		}
	}
}

// pcapStreamBytes sums the TCP payload each address sent, and the sequence
// number of its FIN relative to its SYN.
func pcapStreamBytes(pkts []pcapPkt) (sent map[netip.AddrPort]int, finRel map[netip.AddrPort]uint32) {
	sent, finRel = map[netip.AddrPort]int{}, map[netip.AddrPort]uint32{}
	isn := map[netip.AddrPort]uint32{}
	for _, p := range pkts {
		if p.syn {
			isn[p.src] = p.seq
		}
		sent[p.src] += p.payload
		if p.fin {
			finRel[p.src] = p.seq - isn[p.src]
		}
	}
	return sent, finRel
}

func TestPcapSnapKeepsHeadersAndControlFrames(t *testing.T) {
	dir := t.TempDir()
	const snap = 16
	p := mustOpenPcap(t, dir, PcapOptions{SnapLen: snap, BothLegs: true})
	s := pcapChatScript(t)
	p.Open(pcapConv("snap", "10.0.0.5:51000", "127.0.0.1:8080", "127.0.0.1:52000", "192.0.2.10:9443"), LegClient, pcapT0)
	at := pcapFeed(p, "snap", LegClient, s, pcapT0)
	p.End("snap", LegClient, true, false, at)
	p.End("snap", LegClient, false, false, at)
	p.Forget("snap")
	mustClosePcap(t, p)

	// What must survive: the HTTP upgrade, every header, control frames whole,
	// at most snap bytes of each data frame's payload.
	wantKept := map[bool]int{}
	wantAll := map[bool]int{}
	for _, st := range s.steps {
		wantAll[st.fromServer] += len(st.b)
		if bytes.HasPrefix(st.b, []byte("GET ")) || bytes.HasPrefix(st.b, []byte("HTTP/")) {
			wantKept[st.fromServer] += len(st.b)
			continue
		}
		h, err := ws.ReadHeader(bytes.NewReader(st.b))
		if err != nil {
			t.Fatal(err)
		}
		hl := len(st.b) - int(h.Length)
		if h.OpCode.IsControl() {
			wantKept[st.fromServer] += len(st.b)
		} else {
			wantKept[st.fromServer] += hl + min(int(h.Length), snap)
		}
	}
	sent, fins := pcapStreamBytes(readPcapPackets(t, filepath.Join(dir, PcapFile)))
	cli, srv := netip.MustParseAddrPort("10.0.0.5:51000"), netip.MustParseAddrPort("127.0.0.1:80")
	if sent[cli] != wantKept[false] || sent[srv] != wantKept[true] {
		t.Errorf("captured payload client %d server %d, want %d and %d", sent[cli], sent[srv], wantKept[false], wantKept[true])
	}
	// Sequence numbers count every byte, kept or not (RFC 9293 §3.4).
	if fins[cli] != uint32(wantAll[false]+1) || fins[srv] != uint32(wantAll[true]+1) {
		t.Errorf("FIN at relative seq client %d server %d, want %d and %d", fins[cli], fins[srv], wantAll[false]+1, wantAll[true]+1)
	}

	if _, err := exec.LookPath("tshark"); err != nil && !testkit.Strict() {
		return
	}
	file := filepath.Join(dir, PcapFile)
	pcapRunTool(t, "capinfos", file)
	var closes []string
	for _, row := range testkit.TsharkFields(t, file, "websocket.opcode == 8", "websocket.payload.close.status_code", "websocket.payload.close.reason") {
		closes = append(closes, row[0]+" "+row[1])
	}
	if fmt.Sprint(closes) != fmt.Sprint(s.closes) {
		t.Errorf("close frames after snapped data: tshark %q, want %q", closes, s.closes)
	}
	// Every frame decodes, cut or not (see pcap_snap.go for the layout).
	got := testkit.TsharkOpcodes(t, file)
	if fmt.Sprint(got) != fmt.Sprint(s.counts) {
		t.Errorf("tshark opcodes %v, wrote %v", got, s.counts)
	}
}

// pcapFrameLens lists "opcode:payload length" of every frame tshark decodes.
func pcapFrameLens(t testing.TB, file string) []string {
	t.Helper()
	var lens []string
	for _, r := range testkit.TsharkFields(t, file, "websocket", "websocket.opcode", "websocket.payload_length",
		"websocket.payload_length_ext_16", "websocket.payload_length_ext_64") {
		ops, l7, l16, l64 := strings.Split(r[0], ","), strings.Split(r[1], ","), r[2], r[3]
		e16, e64 := strings.Split(l16, ","), strings.Split(l64, ",")
		for i, op := range ops {
			n := l7[i]
			switch n { // RFC 6455 §5.2: extended lengths, in frame order
			case "126":
				n, e16 = e16[0], e16[1:]
			case "127":
				n, e64 = e64[0], e64[1:]
			}
			lens = append(lens, op+":"+n)
		}
	}
	sort.Strings(lens)
	return lens
}

// scriptFrameLens lists "opcode:payload length" of every frame of s, n times.
func scriptFrameLens(t testing.TB, s *pcapScript, n int) []string {
	t.Helper()
	var lens []string
	for _, st := range s.steps {
		if bytes.HasPrefix(st.b, []byte("GET ")) || bytes.HasPrefix(st.b, []byte("HTTP/")) {
			continue
		}
		h, err := ws.ReadHeader(bytes.NewReader(st.b))
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			lens = append(lens, fmt.Sprintf("%d:%d", h.OpCode, h.Length))
		}
	}
	sort.Strings(lens)
	return lens
}

// TestPcapSnapTsharkCountsEveryFrame: with --pcap-snap, tshark decodes
// every frame (cut data frames too, with their full declared length),
// flags nothing in the TCP streams, and the file is much smaller.
func TestPcapSnapTsharkCountsEveryFrame(t *testing.T) {
	testkit.NeedTool(t, "tshark")
	s := pcapChatScript(t)
	s.add(t, true, ws.OpText, true, bytes.Repeat([]byte("x"), 200000)) // cut over several segments
	s.add(t, false, ws.OpBinary, true, bytes.Repeat([]byte{1}, 16))    // exactly snap: whole
	s.add(t, false, ws.OpBinary, true, bytes.Repeat([]byte{2}, 17))    // one byte cut
	s.add(t, true, ws.OpBinary, true, bytes.Repeat([]byte{3}, 126))    // 16-bit length
	// The script ends with the close frames: move them to the end again.
	n := len(s.steps)
	steps := slices.Concat(s.steps[:n-6], s.steps[n-4:], s.steps[n-6:n-4])
	s.steps = steps
	write := func(snap int) string {
		dir := t.TempDir()
		p := mustOpenPcap(t, dir, PcapOptions{SnapLen: snap})
		c := pcapConv("v4", "10.0.0.5:51000", "127.0.0.1:8080", "127.0.0.1:52000", "192.0.2.10:9443")
		p.Open(c, LegBoth, pcapT0)
		at := pcapFeed(p, "v4", LegBoth, s, pcapT0)
		p.End("v4", LegBoth, true, false, at.Add(time.Millisecond))
		p.End("v4", LegBoth, false, false, at.Add(2*time.Millisecond))
		p.Forget("v4")
		c6 := pcapConv("v6", "[2001:db8::5]:51001", "[2001:db8::1]:8443", "[2001:db8::1]:52001", "[2001:db8::10]:443")
		p.Open(c6, LegBoth, pcapT0)
		at = pcapFeed(p, "v6", LegBoth, s, pcapT0)
		p.End("v6", LegBoth, true, true, at.Add(time.Millisecond))
		p.Forget("v6")
		mustClosePcap(t, p)
		return filepath.Join(dir, PcapFile)
	}
	const snap = 16
	file, full := write(snap), write(0)
	pcapRunTool(t, "capinfos", file)

	got := testkit.TsharkOpcodes(t, file)
	want := map[int]int{}
	for op, n := range s.counts {
		want[op] = 2 * n // two sessions
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("tshark opcodes %v, wrote %v", got, want)
	}
	if lens, wantLens := pcapFrameLens(t, file), scriptFrameLens(t, s, 2); fmt.Sprint(lens) != fmt.Sprint(wantLens) {
		t.Errorf("tshark frames (opcode:length)\n%v, wrote\n%v", lens, wantLens)
	}
	var closes []string
	for _, row := range testkit.TsharkFields(t, file, "websocket.opcode == 8", "websocket.payload.close.status_code", "websocket.payload.close.reason") {
		closes = append(closes, row[0]+" "+row[1])
	}
	wantCloses := repeatStrings(s.closes, 2)
	sort.Strings(closes)
	sort.Strings(wantCloses)
	if fmt.Sprint(closes) != fmt.Sprint(wantCloses) {
		t.Errorf("close frames: tshark %q, want %q", closes, wantCloses)
	}
	// The streams are continuous: no gap, no retransmission, nothing malformed.
	if rows := testkit.TsharkFields(t, file, "tcp.analysis.flags || _ws.malformed || ip.checksum.status == 0",
		"frame.number", "_ws.expert.message"); len(rows) > 0 {
		t.Errorf("%d suspicious packets, first: %v", len(rows), rows[0])
	}

	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	fu, err := os.Stat(full)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("capture of %d frames: %d bytes with --pcap-snap %d, %d bytes without", 2*len(scriptFrameLens(t, s, 1)), fi.Size(), snap, fu.Size())
	if fi.Size()*8 > fu.Size() {
		t.Errorf("snapped capture %d bytes, not much smaller than %d", fi.Size(), fu.Size())
	}
}

func TestSnapTrackerAcrossChunks(t *testing.T) {
	s := pcapChatScript(t)
	const snap = 5
	whole := func(chunk int, hold bool) map[bool][]byte {
		l := &legSnap{snap: snap, hold: hold}
		kept := map[bool][]byte{}
		for _, st := range s.steps {
			for b := st.b; len(b) > 0; {
				n := min(chunk, len(b))
				c := b[:n]
				for _, sp := range l.cut(st.fromServer, c, nil) {
					if sp.kind == spanKeep || sp.kind == spanHead || sp.kind == spanPend {
						kept[st.fromServer] = append(kept[st.fromServer], c[:sp.n]...)
					}
					c = c[sp.n:]
				}
				if len(c) != 0 {
					t.Fatalf("chunk %d: spans cover %d of %d bytes", chunk, n-len(c), n)
				}
				b = b[n:]
			}
		}
		return kept
	}
	want := whole(1<<20, false)
	if !bytes.HasPrefix(want[false], []byte(pcapUpgradeRequest)) || !bytes.HasPrefix(want[true], []byte(pcapUpgradeResponse)) {
		t.Fatal("handshake not kept whole")
	}
	for _, chunk := range []int{1, 2, 3, 13, 14, 15, 125, 126, 127} {
		for _, hold := range []bool{false, true} {
			got := whole(chunk, hold)
			if !bytes.Equal(got[false], want[false]) || !bytes.Equal(got[true], want[true]) {
				t.Errorf("chunks of %d bytes (hold %v) keep %d/%d bytes, whole chunks %d/%d", chunk, hold,
					len(got[false]), len(got[true]), len(want[false]), len(want[true]))
			}
		}
	}
}

func TestSnapTrackerRejectedUpgradeStaysWhole(t *testing.T) {
	l := &legSnap{snap: 1}
	l.cut(false, []byte(pcapUpgradeRequest), nil)
	body := "HTTP/1.1 401 Unauthorized\r\nContent-Length: 300\r\n\r\n" + strings.Repeat("\x82", 300)
	spans := l.cut(true, []byte(body), nil)
	if len(spans) != 1 || spans[0].kind != spanKeep || spans[0].n != len(body) {
		t.Errorf("401 answer cut into %v, want it whole", spans)
	}
	spans = l.cut(false, bytes.Repeat([]byte{0x82, 0x7e, 0x01, 0x00}, 10), nil)
	if len(spans) != 1 || spans[0].kind != spanKeep {
		t.Errorf("client bytes after a 401 cut into %v, want them whole", spans)
	}
}

func TestPcapRotation(t *testing.T) {
	dir, flat := t.TempDir(), t.TempDir()
	p := mustOpenPcap(t, dir, PcapOptions{MaxMB: 1})
	q := mustOpenPcap(t, flat, PcapOptions{})
	s := pcapChatScript(t) // about 70 KB a session
	const sessions = 40
	for i := range sessions {
		id := fmt.Sprintf("s%d", i)
		c := pcapConv(id, fmt.Sprintf("10.0.0.5:%d", 51000+i), "127.0.0.1:8080", fmt.Sprintf("127.0.0.1:%d", 52000+i), "192.0.2.10:9443")
		for _, tap := range []Tap{p, q} {
			tap.Open(c, LegBoth, pcapT0)
			at := pcapFeed(tap, id, LegBoth, s, pcapT0)
			tap.End(id, LegBoth, false, false, at)
			tap.Forget(id)
		}
	}
	mustClosePcap(t, p)
	mustClosePcap(t, q)

	files, err := filepath.Glob(filepath.Join(dir, "capture*.pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("files %v, want capture.pcapng, capture-0002.pcapng and on", files)
	}
	for k := range files {
		if _, err := os.Stat(filepath.Join(dir, pcapName(k+1))); err != nil {
			t.Errorf("%d files, but: %v", len(files), err)
		}
	}
	total := 0
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 1<<20+256<<10 {
			t.Errorf("%s: %d bytes, over 1 MiB plus one record", f, st.Size())
		}
		total += len(readPcapPackets(t, f))
	}
	// The same packets, plus at most five repeated ones (handshake and
	// upgrade) for the session open at a rotation.
	if flatN := len(readPcapPackets(t, filepath.Join(flat, PcapFile))); total < flatN || total > flatN+5*(len(files)-1) {
		t.Errorf("%d packets over %d files, %d without rotation", total, len(files), flatN)
	}
	if _, err := exec.LookPath("tshark"); err != nil && !testkit.Strict() {
		return
	}
	// Every file decodes on its own: the session open at a rotation starts
	// again with a repeated handshake; only frames in flight then are cut (at
	// most one per direction).
	frames, wantFrames := 0, 0
	for _, n := range s.counts {
		wantFrames += sessions * n
	}
	for _, f := range files {
		checkPcapClean(t, f)
		for _, n := range testkit.TsharkOpcodes(t, f) {
			frames += n
		}
	}
	if cut := 2 * (len(files) - 1); frames > wantFrames || frames < wantFrames-cut {
		t.Errorf("%d frames decoded over %d files, want %d less at most %d", frames, len(files), wantFrames, cut)
	}
	t.Logf("%d files, %d of %d frames decoded", len(files), frames, wantFrames)
}

// TestPcapDropsInsteadOfBlocking: while every output buffer waits for the
// disk, Data returns at once and drops what does not fit, counted; the
// capture shows the gap and the FIN after every byte sent.
func TestPcapDropsInsteadOfBlocking(t *testing.T) {
	dir := t.TempDir()
	p := mustOpenPcap(t, dir, PcapOptions{QueueMB: 1}) // two output buffers
	p.Open(pcapConv("flood", "10.0.0.5:51000", "127.0.0.1:8080", "", ""), LegClient, pcapT0)
	chunk := bytes.Repeat([]byte{0x42}, 60000)
	const n = 300
	for range n / 3 {
		p.Data("flood", LegBoth, true, pcapT0, chunk)
	}
	resume := stallDisk(p)
	start := time.Now()
	for range n / 3 {
		p.Data("flood", LegBoth, true, pcapT0, chunk)
	}
	elapsed := time.Since(start)
	resume()
	for range n / 3 {
		p.Data("flood", LegBoth, true, pcapT0, chunk)
	}
	for !pcapHasRoom(p, 64<<10) { // let the disk catch up so that the FIN gets in
		time.Sleep(time.Millisecond)
	}
	p.End("flood", LegUpstream, true, false, pcapT0) // the upstream's FIN
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	dropped := p.Dropped()
	// A buffer holds 69 chunks: the rest of the 100 sent while the disk
	// was stalled cannot fit.
	if dropped < int64(n/3-sinkSize/len(chunk)) {
		t.Fatalf("%d drops after %d chunks of %d bytes while every buffer waited for the disk (%v)", dropped, n/3, len(chunk), elapsed)
	}
	t.Logf("%d of %d chunks dropped; %d sent in %v while the disk stalled", dropped, n, n/3, elapsed)
	pkts := readPcapPackets(t, filepath.Join(dir, PcapFile))
	sent, fins := pcapStreamBytes(pkts)
	srv := netip.MustParseAddrPort("127.0.0.1:80")
	if want := uint32(n*len(chunk) + 1); fins[srv] != want {
		t.Errorf("FIN at relative seq %d, want %d", fins[srv], want)
	}
	if got, want := sent[srv], (n-int(dropped))*len(chunk); got != want {
		t.Errorf("%d bytes written, want %d (%d chunks dropped)", got, want, dropped)
	}
}

// stallDisk takes every output buffer but the current one away from p, as
// if they all waited for the disk, until resume gives them back.
func stallDisk(p *Pcap) (resume func()) {
	var held []*outBuf
	for len(held) < p.sp.max-1 {
		p.mu.Lock()
		if p.sp.spare != nil {
			held = append(held, p.sp.spare)
			p.sp.spare = nil
		}
		for ob := p.sp.take(); ob != nil; ob = p.sp.take() {
			held = append(held, ob)
		}
		p.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	return func() {
		for _, ob := range held {
			p.sp.free <- ob
		}
	}
}

func TestPcapConcurrentSessions(t *testing.T) {
	dir := t.TempDir()
	p := mustOpenPcap(t, dir, PcapOptions{QueueMB: 512})
	s := pcapChatScript(t)
	const sessions = 16
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("c%d", i)
			p.Open(&Conv{Session: id}, LegBoth, pcapT0) // no addresses: made up
			at := pcapFeed(p, id, LegBoth, s, pcapT0)
			p.End(id, LegBoth, false, false, at)
			p.Forget(id)
		}()
	}
	wg.Wait()
	mustClosePcap(t, p)
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	pkts := readPcapPackets(t, filepath.Join(dir, PcapFile))
	syns := map[[2]netip.AddrPort]bool{}
	for _, pk := range pkts {
		if pk.syn && pk.ack == 0 {
			syns[[2]netip.AddrPort{pk.src, pk.dst}] = true
		}
	}
	if len(syns) != sessions {
		t.Errorf("%d distinct TCP conversations, want %d", len(syns), sessions)
	}
	if _, err := exec.LookPath("tshark"); err != nil && !testkit.Strict() {
		return
	}
	got := testkit.TsharkOpcodes(t, filepath.Join(dir, PcapFile))
	for op, n := range s.counts {
		if got[op] != sessions*n {
			t.Errorf("opcode %d: tshark found %d frames, want %d", op, got[op], sessions*n)
		}
	}
}

func TestPcapSameAddressesDoNotCollide(t *testing.T) {
	// Everything on one host, and the same client port on both legs.
	c := pcapConv("same", "127.0.0.1:40000", "127.0.0.1:8080", "127.0.0.1:40000", "127.0.0.1:9000")
	clientSides := func(both bool, sessions ...string) map[netip.AddrPort]int {
		dir := t.TempDir()
		p := mustOpenPcap(t, dir, PcapOptions{BothLegs: both})
		for _, id := range sessions {
			c := *c
			c.Session = id
			p.Open(&c, LegBoth, pcapT0)
			p.Data(id, LegBoth, false, pcapT0, []byte(pcapUpgradeRequest))
		}
		for _, id := range sessions {
			p.End(id, LegBoth, false, false, pcapT0)
		}
		mustClosePcap(t, p)
		conns := map[netip.AddrPort]int{}
		for _, pk := range readPcapPackets(t, filepath.Join(dir, PcapFile)) {
			if pk.syn && !pk.rst && pk.ack == 0 {
				conns[pk.src]++
			}
		}
		return conns
	}
	if conns := clientSides(true, "same"); len(conns) != 2 {
		t.Errorf("both legs: client sides %v, want two different ones", conns)
	}
	// One conversation per session: two sessions open at once with the
	// same addresses (a reused client port) still get two.
	if conns := clientSides(false, "same", "again"); len(conns) != 2 {
		t.Errorf("two sessions: client sides %v, want two different ones", conns)
	}
}

// pcapHasRoom reports whether n bytes fit in p's output buffers now.
func pcapHasRoom(p *Pcap, n int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sp.reserve(n)
}

// BenchmarkPcapWriter measures what a relay goroutine pays to record a
// chunk: building its packets into the output buffer, once per session
// (the default) or on both legs; the disk is written by the I/O goroutine.
func BenchmarkPcapWriter(b *testing.B) {
	for _, size := range []int{64, 1 << 10, 16 << 10} {
		for _, both := range []bool{false, true} {
			name := fmt.Sprintf("chunk=%dB/both=%v", size, both)
			b.Run(name, func(b *testing.B) { benchWriter(b, size, both) })
		}
	}
}

func benchWriter(b *testing.B, size int, both bool) {
	p, err := OpenPcap(b.TempDir(), PcapOptions{BothLegs: both})
	if err != nil {
		b.Fatal(err)
	}
	packets := 1
	if both {
		packets = 2
	}
	p.Open(&Conv{Session: "bench"}, LegBoth, pcapT0)
	chunk := bytes.Repeat([]byte{0x42}, size)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p.Data("bench", LegBoth, i&1 == 0, pcapT0, chunk)
	}
	b.StopTimer()
	b.ReportMetric(float64(packets), "packets/op")
	if err := p.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(p.Dropped())/float64(b.N), "dropped/op")
}

// BenchmarkPcapData measures what the relay pays per Data call, from many
// goroutines at once: building the packets under the mutex.
func BenchmarkPcapData(b *testing.B) {
	p, err := OpenPcap(b.TempDir(), PcapOptions{})
	if err != nil {
		b.Fatal(err)
	}
	p.Open(&Conv{Session: "bench"}, LegBoth, pcapT0)
	chunk := bytes.Repeat([]byte{0x42}, 1024)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.Data("bench", LegBoth, true, pcapT0, chunk)
		}
	})
	b.StopTimer()
	if err := p.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(p.Dropped())/float64(b.N), "dropped/op")
}

// BenchmarkSum16 measures the TCP checksum of a 16 KiB payload.
func BenchmarkSum16(b *testing.B) {
	p := bytes.Repeat([]byte{0x42, 0xff, 0x07, 0x10}, 4<<10) // 16 KiB
	b.SetBytes(int64(len(p)))
	var s uint64
	for range b.N {
		s += sum16(p, 0)
	}
	if s == 0 {
		b.Fatal("no sum")
	}
}

// TestSum16MatchesRFC1071: the eight-bytes-at-a-time sum equals the plain
// RFC 1071 loop over big-endian words, for every length and start value.
func TestSum16MatchesRFC1071(t *testing.T) {
	b := make([]byte, 600)
	for i := range b {
		b[i] = byte(i*151 + 7)
	}
	b[5], b[6], b[7] = 0xff, 0xff, 0xff
	for n := 0; n <= len(b); n++ {
		var want uint64 = 0x1234
		for i := 0; i+1 < n; i += 2 {
			want += uint64(b[i])<<8 | uint64(b[i+1])
		}
		if n%2 == 1 {
			want += uint64(b[n-1]) << 8
		}
		if got := fold(sum16(b[:n], 0x1234)); got != fold(want) {
			t.Fatalf("%d bytes: sum %#04x, want %#04x", n, got, fold(want))
		}
	}
	ff := bytes.Repeat([]byte{0xff}, 4096)
	if got := fold(sum16(ff, 0)); got != 0xffff {
		t.Errorf("all ones: %#04x, want 0xffff", got)
	}
}
