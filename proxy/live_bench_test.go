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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	rec.Close(time.Now())
}
