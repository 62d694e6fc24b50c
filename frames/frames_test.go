package frames

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"strings"
	"sync"
	"testing"

	"github.com/gobwas/ws"
)

// rec is an Observer that writes down everything, for comparisons.
type rec struct {
	log      []string
	findings []string
}

func (r *rec) Frame(f *Info) {
	r.log = append(r.log, fmt.Sprintf("frame op=%d fin=%v rsv=%d masked=%v len=%d hl=%d first=%v", f.OpCode, f.Fin, f.Rsv, f.Masked, f.Length, f.HeaderLen, f.FirstOfMessage))
}
func (r *rec) Control(f *Info, p []byte) {
	r.log = append(r.log, fmt.Sprintf("control op=%d %q", f.OpCode, p))
}
func (r *rec) Data(f *Info, p []byte) {
	r.log = append(r.log, fmt.Sprintf("data op=%d %q", f.OpCode, p))
}
func (r *rec) Finding(rule, detail string) {
	r.findings = append(r.findings, rule)
	r.log = append(r.log, "finding "+rule)
}

func frame(t testing.TB, f ws.Frame, mask bool) []byte {
	t.Helper()
	if mask {
		f = ws.MaskFrame(f)
	}
	var b bytes.Buffer
	if err := ws.WriteFrame(&b, f); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestParseHeaderBoundaries checks the length encodings at their edges
// against gobwas/ws's own reader (§5.2: 7-bit, 16-bit and 64-bit lengths).
func TestParseHeaderBoundaries(t *testing.T) {
	for _, n := range []int64{0, 1, 124, 125, 126, 127, 65534, 65535, 65536, 65537, 1 << 24} {
		for _, masked := range []bool{false, true} {
			h := ws.Header{Fin: true, OpCode: ws.OpBinary, Length: n, Masked: masked}
			if masked {
				h.Mask = [4]byte{1, 2, 3, 4}
			}
			var b bytes.Buffer
			if err := ws.WriteHeader(&b, h); err != nil {
				t.Fatal(err)
			}
			raw := b.Bytes()
			if got := headerLen(raw[1]); got != len(raw) {
				t.Fatalf("len %d masked %v: headerLen %d, want %d", n, masked, got, len(raw))
			}
			got, err := parseHeader(raw)
			if err != nil || got != h {
				t.Fatalf("len %d masked %v: got %+v %v, want %+v", n, masked, got, err, h)
			}
		}
	}
}

func TestParseHeaderBits(t *testing.T) {
	// 1 001 0001 | 0 1100100: FIN, RSV3, text, unmasked, length 100.
	got, err := parseHeader([]byte{0b1001_0001, 0b0110_0100})
	want := ws.Header{Fin: true, Rsv: 1, OpCode: ws.OpText, Length: 100}
	if err != nil || got != want {
		t.Fatalf("got %+v %v, want %+v", got, err, want)
	}
	// 64-bit length with the MSB set: unparsable.
	raw := []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1}
	if _, err := parseHeader(raw); err != ErrLengthMSB {
		t.Fatalf("MSB length: err %v", err)
	}
}

// stream is a realistic client→server stream: every kind of frame, masked.
func stream(t testing.TB) []byte {
	var b []byte
	b = append(b, frame(t, ws.NewTextFrame([]byte("hello")), true)...)
	b = append(b, frame(t, ws.NewBinaryFrame(bytes.Repeat([]byte{7}, 70000)), true)...)
	b = append(b, frame(t, ws.NewFrame(ws.OpText, false, []byte("frag1-")), true)...)
	b = append(b, frame(t, ws.NewPingFrame([]byte("p1")), true)...)
	b = append(b, frame(t, ws.NewFrame(ws.OpContinuation, true, []byte("frag2")), true)...)
	b = append(b, frame(t, ws.NewPongFrame([]byte("p0")), true)...)
	b = append(b, frame(t, ws.NewCloseFrame(ws.NewCloseFrameBody(4001, "bye now")), true)...)
	return b
}

// TestScannerChunking feeds the same stream whole and in random chunks and
// expects the same observations: frame boundaries must not depend on reads.
func TestScannerChunking(t *testing.T) {
	data := stream(t)
	whole := &rec{}
	s := NewScanner(whole, true, 0)
	s.DataPrefix = 16
	s.Feed(data)
	if len(whole.findings) != 0 {
		t.Fatalf("clean stream has findings %v", whole.findings)
	}
	want := strings.Join(whole.log, "\n")
	for _, must := range []string{`control op=9 "p1"`, `control op=10 "p0"`, `data op=1 "hello"`, `data op=0 "frag2"`, `"\x0f\xa1bye now"`} {
		if !strings.Contains(want, must) {
			t.Fatalf("log lacks %q:\n%s", must, want)
		}
	}
	rnd := rand.New(rand.NewSource(1))
	for i := 0; i < 200; i++ {
		r := &rec{}
		s := NewScanner(r, true, 0)
		s.DataPrefix = 16
		for p := data; len(p) > 0; {
			n := 1 + rnd.Intn(20)
			if rnd.Intn(10) == 0 {
				n = 1 + rnd.Intn(80000)
			}
			if n > len(p) {
				n = len(p)
			}
			s.Feed(p[:n])
			p = p[n:]
		}
		if got := strings.Join(r.log, "\n"); got != want {
			t.Fatalf("chunking %d differs:\n%s\nwant\n%s", i, got, want)
		}
	}
}

func TestScannerFindings(t *testing.T) {
	big := bytes.Repeat([]byte{'a'}, 126)
	cases := []struct {
		name       string
		fromClient bool
		data       []byte
		want       string
	}{
		{"control too long", false, frame(t, ws.NewPingFrame(big), false), RuleControlTooLong},
		{"fragmented ping", false, frame(t, ws.NewFrame(ws.OpPing, false, nil), false), RuleControlFragmented},
		{"unmasked client", true, frame(t, ws.NewTextFrame([]byte("x")), false), RuleUnmaskedClient},
		{"masked server", false, frame(t, ws.NewTextFrame([]byte("x")), true), RuleMaskedServer},
		{"reserved opcode", false, frame(t, ws.NewFrame(ws.OpCode(3), true, nil), false), RuleReservedOpcode},
		{"rsv", false, frame(t, ws.Frame{Header: ws.Header{Fin: true, Rsv: 4, OpCode: ws.OpText, Length: 1}, Payload: []byte("x")}, false), RuleRsvNoExtension},
		{"close 1 byte", false, frame(t, ws.NewCloseFrame([]byte{3}), false), RuleCloseInvalid},
		{"close 1006", false, frame(t, ws.NewCloseFrame(ws.NewCloseFrameBody(1006, "")), false), RuleCloseInvalid},
		{"close bad utf8", false, frame(t, ws.NewCloseFrame(append([]byte{3, 232}, 0xff, 0xfe)), false), RuleCloseInvalid},
		{"after close", false, append(frame(t, ws.NewCloseFrame(nil), false), frame(t, ws.NewTextFrame([]byte("x")), false)...), RuleAfterClose},
		{"orphan continuation", false, frame(t, ws.NewFrame(ws.OpContinuation, true, []byte("x")), false), RuleFragmentOrder},
		{"msb length", false, []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 'x', 'y'}, RuleHeaderUnparsable},
	}
	for _, c := range cases {
		r := &rec{}
		s := NewScanner(r, c.fromClient, 0)
		s.Feed(c.data)
		if len(r.findings) != 1 || r.findings[0] != c.want {
			t.Errorf("%s: findings %v, want exactly [%s]", c.name, r.findings, c.want)
		}
	}
	// RSV1 is fine once permessage-deflate was negotiated.
	r := &rec{}
	NewScanner(r, false, 4).Feed(frame(t, ws.Frame{Header: ws.Header{Fin: true, Rsv: 4, OpCode: ws.OpText, Length: 1}, Payload: []byte("x")}, false))
	if len(r.findings) != 0 {
		t.Errorf("rsv1 with deflate: %v", r.findings)
	}
	// A tunnel keeps counting bytes.
	r = &rec{}
	s := NewScanner(r, false, 0)
	s.Feed([]byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 'x', 'y'})
	s.Feed([]byte("zzz"))
	if tun, n := s.Tunnel(); !tun || n != 5 {
		t.Errorf("tunnel %v %d, want true 5", tun, n)
	}
}

func TestDecodeClose(t *testing.T) {
	for _, c := range []struct {
		p      []byte
		code   int
		reason string
		bad    bool
	}{
		{nil, 1005, "", false},
		{ws.NewCloseFrameBody(1000, "ok"), 1000, "ok", false},
		{ws.NewCloseFrameBody(4999, ""), 4999, "", false},
		{ws.NewCloseFrameBody(1005, ""), 1005, "", true},
		{ws.NewCloseFrameBody(1015, ""), 1015, "", true},
		{ws.NewCloseFrameBody(2000, ""), 2000, "", true},
		{[]byte{1}, 1005, "", true},
	} {
		ci := DecodeClose(c.p)
		if ci.Code != c.code || ci.Reason != c.reason || (ci.Problem != "") != c.bad {
			t.Errorf("%x: got %+v", c.p, ci)
		}
	}
	if CodeName(1006) != "Abnormal Closure" || CodeName(4000) != "Private (application)" {
		t.Error("code names")
	}
}

// countObs counts frames and findings without allocating.
type countObs struct{ frames, findings int }

func (c *countObs) Frame(*Info)            { c.frames++ }
func (c *countObs) Control(*Info, []byte)  {}
func (c *countObs) Data(*Info, []byte)     {}
func (c *countObs) Finding(string, string) { c.findings++ }

// BenchmarkCopy relays batches of small masked frames through Copy: the
// per-chunk, per-frame path must report 0 allocs/op.
func BenchmarkCopy(b *testing.B) {
	var chunk []byte
	for len(chunk) < 16<<10 {
		chunk = append(chunk, frame(b, ws.NewBinaryFrame(make([]byte, 64)), true)...)
		chunk = append(chunk, frame(b, ws.NewPingFrame([]byte("k")), true)...)
	}
	src := &repeatReader{chunk: chunk}
	obs := &countObs{}
	s := NewScanner(obs, true, 0)
	pool := &sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
	bufs := &Buffers{Small: make([]byte, 2048), Pool: pool}
	var seen int
	onChunk := func(p []byte) { seen += len(p) }
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	b.ResetTimer()
	src.left = b.N
	if _, err := Copy(io.Discard, src, bufs, s, onChunk); !IsEOF(err) {
		b.Fatal(err)
	}
	if obs.findings != 0 || seen != b.N*len(chunk) {
		b.Fatalf("findings %d, relayed %d of %d bytes", obs.findings, seen, b.N*len(chunk))
	}
}

// repeatReader serves chunk left times, as reads of whatever size asked.
type repeatReader struct {
	chunk []byte
	left  int
	off   int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunk[r.off:])
	r.off += n
	if r.off == len(r.chunk) {
		r.off = 0
		r.left--
	}
	return n, nil
}

// FuzzParseHeader: our slice parser agrees with gobwas/ws's reader, and the
// scanner never panics or allocates the declared length on any stream.
func FuzzParseHeader(f *testing.F) {
	f.Add([]byte{0x81, 0x85, 1, 2, 3, 4, 'h', 'e', 'l', 'l', 'o'})
	f.Add([]byte{0x82, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x88, 0x01, 0x03})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) >= 2 && len(data) >= headerLen(data[1]) {
			n := headerLen(data[1])
			mine, err1 := parseHeader(data[:n])
			theirs, err2 := ws.ReadHeader(bytes.NewReader(data[:n]))
			if (err1 == nil) != (err2 == nil) || (err1 == nil && mine != theirs) {
				t.Fatalf("parseHeader %+v %v; ws.ReadHeader %+v %v", mine, err1, theirs, err2)
			}
		}
		r := &rec{}
		s := NewScanner(r, true, 0)
		s.DataPrefix = 8
		var out bytes.Buffer
		n, err := Copy(&out, bytes.NewReader(data), &Buffers{Small: make([]byte, 7), Pool: &sync.Pool{New: func() any { b := make([]byte, 13); return &b }}}, s, nil)
		if !IsEOF(err) || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("Copy relayed %d of %d bytes, err %v", n, len(data), err)
		}
	})
}
