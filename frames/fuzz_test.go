package frames_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/wstap/wstap/frames"
)

// Fuzz targets and stress tests of the scanner and the relay pump (issue 9,
// item 1), through the package's exported API only. Seeds live in
// testdata/fuzz/<Target>/ as well as in f.Add; .ci/fuzz.sh runs each target
// for a fixed time.

// fzChunkReader returns data in pseudo-random chunk sizes.
type fzChunkReader struct {
	data []byte
	rnd  *rand.Rand
	max  int
}

func (c *fzChunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := 1 + c.rnd.Intn(c.max)
	if n > len(p) {
		n = len(p)
	}
	if n > len(c.data) {
		n = len(c.data)
	}
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// fzObs records everything a Scanner reports, checking the bounds of what
// it hands over.
type fzObs struct {
	t      *testing.T
	prefix int
	log    []string
}

func (o *fzObs) Frame(f *frames.Info) {
	o.log = append(o.log, fmt.Sprintf("F %d %v %d %v %d %d %v", f.OpCode, f.Fin, f.Rsv, f.Masked, f.Length, f.HeaderLen, f.FirstOfMessage))
}
func (o *fzObs) Control(f *frames.Info, p []byte) {
	if len(p) > ws.MaxControlFramePayloadSize || int64(len(p)) > f.Length {
		o.t.Fatalf("control payload of %d bytes for a declared %d", len(p), f.Length)
	}
	o.log = append(o.log, fmt.Sprintf("C %d %q", f.OpCode, p))
}
func (o *fzObs) Data(f *frames.Info, p []byte) {
	if len(p) > o.prefix || int64(len(p)) > f.Length {
		o.t.Fatalf("data prefix of %d bytes (DataPrefix %d, length %d)", len(p), o.prefix, f.Length)
	}
	o.log = append(o.log, fmt.Sprintf("D %d %q", f.OpCode, p))
}
func (o *fzObs) Finding(rule, detail string) {
	if !strings.HasPrefix(rule, "frame-") || detail == "" {
		o.t.Fatalf("finding %q %q", rule, detail)
	}
	o.log = append(o.log, "X "+rule)
}

// FuzzScannerChunks relays a random byte stream, split in random chunks,
// through frames.Copy with a Scanner: never a panic, exactly the bytes read
// are written, and the scanner sees the same frames whatever the split.
func FuzzScannerChunks(f *testing.F) {
	var seed bytes.Buffer
	ws.WriteFrame(&seed, ws.MaskFrame(ws.NewTextFrame([]byte("hello"))))
	ws.WriteFrame(&seed, ws.MaskFrame(ws.NewFrame(ws.OpText, false, []byte("frag-"))))
	ws.WriteFrame(&seed, ws.MaskFrame(ws.NewPingFrame([]byte("p"))))
	ws.WriteFrame(&seed, ws.MaskFrame(ws.NewFrame(ws.OpContinuation, true, []byte("end"))))
	ws.WriteFrame(&seed, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(1000, "bye"))))
	f.Add(seed.Bytes(), int64(1), true)
	f.Add([]byte{0x82, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 'a', 'b', 'c'}, int64(2), false)
	f.Add([]byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 'x', 'y'}, int64(3), false)
	f.Add([]byte{0x89, 126, 0, 126}, int64(4), false)
	f.Add(append([]byte{0x09, 0x01, 'p', 0xc1, 0x01, 'x', 0x83, 0}, make([]byte, 40)...), int64(5), true)
	f.Fuzz(func(t *testing.T, data []byte, seed int64, fromClient bool) {
		whole := &fzObs{t: t, prefix: 8}
		s := frames.NewScanner(whole, fromClient, 0)
		s.DataPrefix = 8
		s.Feed(data)

		rnd := rand.New(rand.NewSource(seed))
		obs := &fzObs{t: t, prefix: 8}
		s2 := frames.NewScanner(obs, fromClient, 0)
		s2.DataPrefix = 8
		var out bytes.Buffer
		var seen int
		bufs := &frames.Buffers{Small: make([]byte, 1+rnd.Intn(32)), Pool: &sync.Pool{New: func() any { b := make([]byte, 64); return &b }}}
		n, err := frames.Copy(&out, &fzChunkReader{data: data, rnd: rnd, max: 1 + rnd.Intn(80)}, bufs, s2, func(p []byte) { seen += len(p) })
		if !frames.IsEOF(err) || n != int64(len(data)) || seen != len(data) || !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("relayed %d (seen %d) of %d bytes, err %v, equal %v", n, seen, len(data), err, bytes.Equal(out.Bytes(), data))
		}
		if a, b := strings.Join(whole.log, "\n"), strings.Join(obs.log, "\n"); a != b {
			t.Fatalf("chunking changed what the scanner saw:\n%s\nwhole:\n%s", b, a)
		}
		if tun, tn := s2.Tunnel(); tun && tn > int64(len(data)) {
			t.Fatalf("tunnel counted %d of %d bytes", tn, len(data))
		}
	})
}

// FuzzDecodeClose: never a panic; code and reason are the payload's; a
// problem is reported iff the frame breaks §5.5.1 or §7.4.1.
func FuzzDecodeClose(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3})
	f.Add([]byte(ws.NewCloseFrameBody(1000, "bye")))
	f.Add([]byte(ws.NewCloseFrameBody(1006, "")))
	f.Add([]byte(ws.NewCloseFrameBody(4999, "\xff\xfe")))
	f.Fuzz(func(t *testing.T, p []byte) {
		ci := frames.DecodeClose(p)
		switch len(p) {
		case 0:
			if ci.Code != 1005 || ci.Problem != "" {
				t.Fatalf("empty: %+v", ci)
			}
			return
		case 1:
			if ci.Problem == "" {
				t.Fatalf("1 byte: %+v", ci)
			}
			return
		}
		code := int(binary.BigEndian.Uint16(p))
		if ci.Code != code || ci.Reason != string(p[2:]) {
			t.Fatalf("%x: %+v", p, ci)
		}
		bad := !utf8.Valid(p[2:]) || !frames.SendableCode(code)
		if bad != (ci.Problem != "") {
			t.Fatalf("%x: problem %q, want bad=%v", p, ci.Problem, bad)
		}
		if frames.CodeName(code) == "" {
			t.Fatalf("no name for %d", code)
		}
	})
}

// fzHugeReader yields a frame header then zeros forever (up to left bytes).
type fzHugeReader struct {
	hdr  []byte
	left int64
}

func (h *fzHugeReader) Read(p []byte) (int, error) {
	if len(h.hdr) > 0 {
		n := copy(p, h.hdr)
		h.hdr = h.hdr[n:]
		return n, nil
	}
	if h.left <= 0 {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > h.left {
		n = int(h.left)
	}
	clear(p[:n])
	h.left -= int64(n)
	return n, nil
}

// TestScannerHugeLengthNoAllocation: a header declaring 2^62 or 2^63−1
// payload bytes is relayed as a stream; relaying 64 MiB of it allocates
// nothing in proportion to the declared (or relayed) length.
func TestScannerHugeLengthNoAllocation(t *testing.T) {
	for _, n := range []uint64{1 << 62, 1<<63 - 1} {
		for _, op := range []byte{0x82, 0x89} { // binary, ping (control: too long)
			hdr := []byte{op, 127, 0, 0, 0, 0, 0, 0, 0, 0}
			binary.BigEndian.PutUint64(hdr[2:], n)
			obs := &fzObs{t: t, prefix: 256}
			s := frames.NewScanner(obs, false, 0)
			s.DataPrefix = 256
			pool := &sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
			bufs := &frames.Buffers{Small: make([]byte, 2048), Pool: pool}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			const relay = 64 << 20
			got, err := frames.Copy(io.Discard, &fzHugeReader{hdr: hdr, left: relay}, bufs, s, nil)
			runtime.ReadMemStats(&after)
			if !frames.IsEOF(err) || got != relay+int64(len(hdr)) {
				t.Fatalf("length %d: relayed %d, err %v", n, got, err)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
				t.Errorf("length %d op %#x: relaying 64 MiB allocated %d bytes", n, op, grew)
			}
			if !strings.Contains(strings.Join(obs.log, "\n"), fmt.Sprintf("F %d true 0 false %d 10", op&0xf, n)) {
				t.Errorf("length %d: scanner log %v", n, obs.log)
			}
			if op == 0x89 && !strings.Contains(strings.Join(obs.log, " "), frames.RuleControlTooLong) {
				t.Errorf("ping of %d bytes: no %s in %v", n, frames.RuleControlTooLong, obs.log)
			}
		}
	}
	// Feeding the header alone allocates nothing at all.
	hdr := []byte{0x82, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	chunk := make([]byte, 4096)
	s := frames.NewScanner(fzNopObs{}, false, 0)
	s.Feed(hdr)
	if a := testing.AllocsPerRun(1000, func() { s.Feed(chunk) }); a != 0 {
		t.Errorf("feeding payload of a 2^63-1 frame: %v allocations per 4 KiB", a)
	}
}

type fzNopObs struct{}

func (fzNopObs) Frame(*frames.Info)           {}
func (fzNopObs) Control(*frames.Info, []byte) {}
func (fzNopObs) Data(*frames.Info, []byte)    {}
func (fzNopObs) Finding(string, string)       {}

// patternReader yields a deterministic stream, alternating reads that fill
// the buffer (so Copy borrows a large one) and short reads (so it gives it
// back).
type patternReader struct {
	seed byte
	off  int
	left int
	n    int
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	r.n++
	k := len(p)
	if r.n%2 == 0 && k > 100 {
		k = 100
	}
	if k > r.left {
		k = r.left
	}
	for i := 0; i < k; i++ {
		p[i] = r.seed + byte((r.off+i)%251)
	}
	r.off += k
	r.left -= k
	return k, nil
}

// slowChecker checks each chunk after a pause, as a slow socket would
// still be reading it.
type slowChecker struct {
	seed byte
	off  int
	bad  int
}

func (w *slowChecker) Write(p []byte) (int, error) {
	time.Sleep(50 * time.Microsecond)
	for i, b := range p {
		if b != w.seed+byte((w.off+i)%251) {
			w.bad++
			break
		}
	}
	w.off += len(p)
	return len(p), nil
}

// TestCopySharedPoolNoCorruption: sessions sharing the large-buffer pool
// never see each other's bytes (Copy once gave a buffer back to the pool
// before writing the chunk read into it).
func TestCopySharedPoolNoCorruption(t *testing.T) {
	pool := &sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
	var wg sync.WaitGroup
	bad := make([]int, 8)
	for g := range bad {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			w := &slowChecker{seed: byte(g * 31)}
			bufs := &frames.Buffers{Small: make([]byte, 2048), Pool: pool}
			frames.Copy(w, &patternReader{seed: byte(g * 31), left: 4 << 20}, bufs, nil, nil)
			bad[g] = w.bad
		}(g)
	}
	wg.Wait()
	for g, n := range bad {
		if n > 0 {
			t.Errorf("copy %d: %d chunks corrupted by another copy's reads", g, n)
		}
	}
}
