package proxy

import (
	"context"
	"io"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/record"
	"github.com/wstap/wstap/frames"
	"github.com/wstap/wstap/internal/testkit"
)

// BenchmarkRelaySmallFrames: 64 binary messages of 64 bytes written, then
// their 64 echoes read, through the proxy without capture: the per-read
// work of the relay (frame scanner, live counters) weighs most here, next
// to BenchmarkRelayCapture's 16 KiB messages. MB/s counts each message once.
func BenchmarkRelaySmallFrames(b *testing.B) {
	up := websocket.Upgrader{}
	ts := httptest.NewServer(testkit.Handler(&up, echo))
	defer ts.Close()
	rec, err := capture.OpenRecorder(filepath.Join(b.TempDir(), "run"), capture.RunInfo{Version: "bench"}, 0, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	u, _ := url.Parse("ws" + strings.TrimPrefix(ts.URL, "http"))
	srv, err := Start(Config{Listen: "127.0.0.1:0", Upstream: u, Recorder: rec, Log: zerolog.Nop(), MaxMessageEvents: -1})
	if err != nil {
		b.Fatal(err)
	}
	c, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr().String()+"/bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 64)
	const batch = 64
	b.SetBytes(batch * int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for range batch {
			if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				b.Fatal(err)
			}
		}
		for range batch {
			if _, _, err := c.ReadMessage(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	c.ReadMessage()
	c.Close()
	stopBenchProxy(b, srv, rec, nil)
}

// stopBenchProxy shuts a benchmark's proxy down, closes its recorder and
// pcap (pc may be nil) and reports the packets the pcap dropped.
func stopBenchProxy(b *testing.B, srv *Server, rec *capture.Recorder, pc *capture.Pcap) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	rec.Close(time.Now())
	if pc != nil {
		pc.Close()
		if n := pc.Dropped(); n > 0 {
			b.ReportMetric(float64(n), "pcap-dropped")
		}
	}
}

// BenchmarkPump: one relay direction (wsSession.pump) alone, from memory to
// io.Discard without capture: reads of up to 16 KiB (after the first, of 512 bytes), holding 64-byte masked
// binary frames, so the per-read and per-frame work of the relay (frame
// scanner, observer, live counters) is all that is timed. It must report 0
// allocs/op.
func BenchmarkPump(b *testing.B) {
	srv := &Server{cfg: Config{MaxMessageEvents: -1, Tap: capture.NopTap{}, Recorder: benchRecorder{}}}
	srv.bufPool.New = func() any { b := make([]byte, relayBigBuffer); return &b }
	ss := newSession(srv, "s1")
	for d := range numDirections {
		o := &dirObs{ss: ss, dir: d}
		o.scanner = frames.NewScanner(o, d == clientToUpstream, 0)
		ss.dirs[d] = o
	}
	var chunk []byte
	for f := rawFrame(true, 0, 2, true, make([]byte, 64)); len(chunk)+len(f) <= 16<<10; {
		chunk = append(chunk, f...)
	}
	src := &chunkReader{chunk: chunk, left: b.N}
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	b.ResetTimer()
	ss.pump(clientToUpstream, io.Discard, src)
	b.StopTimer()
	if got, want := ss.dirs[clientToUpstream].counts.Frames, int64(b.N*(len(chunk)/70)); got != want {
		b.Fatalf("%d frames counted, want %d", got, want)
	}
}

// chunkReader serves chunk left times, in reads of whatever size asked,
// then io.EOF.
type chunkReader struct {
	chunk []byte
	left  int
	off   int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunk[r.off:])
	if r.off += n; r.off == len(r.chunk) {
		r.off = 0
		r.left--
	}
	return n, nil
}

// benchRecorder drops what the relay reports.
type benchRecorder struct{}

func (benchRecorder) Event(capture.Event)     {}
func (benchRecorder) Session(*record.Session) {}
