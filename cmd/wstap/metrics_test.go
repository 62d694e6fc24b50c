package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wstap/wstap/internal/testkit"
)

// scrape fetches /metrics and returns each sample as "name{labels}" → value.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want the Prometheus text format", ct)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// echoSession runs one gorilla session through the proxy: three 5-byte text
// messages echoed, one ping answered, a clean close both ways.
func echoSession(t *testing.T, url string) {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pong := make(chan struct{}, 1)
	c.SetPongHandler(func(string) error { pong <- struct{}{}; return nil })
	if err := c.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := c.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "hello" {
			t.Fatalf("echo: %q, %v", msg, err)
		}
	}
	select {
	case <-pong:
	case <-time.After(5 * time.Second):
		t.Fatal("no pong")
	}
	if err := c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")); err != nil {
		t.Fatal(err)
	}
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Fatalf("close: %v", err)
			}
			return
		}
	}
}

// TestMetricsEndpoint: two gorilla sessions, one REST call and one garbage
// request through 'wstap proxy --metrics'; the scrape counts them exactly and
// run.json's totals are what they are without --metrics.
func TestMetricsEndpoint(t *testing.T) {
	upURL, _ := testkit.EchoServer(t, false)
	dir := t.TempDir()
	r, err := startProxy(&proxyOptions{listen: "127.0.0.1:0", upstream: upURL,
		out: dir, caDir: filepath.Join(dir, "ca"), maxHeaderBytes: 64 << 10, headerTimeout: 30 * time.Second,
		latePong: 5 * time.Second, noKeepalive: 30 * time.Second, maxPerToken: 3, metrics: "127.0.0.1:0",
		args: []string{"test"}}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			r.stop()
		}
	}()
	addr := r.srv.Addr().String()
	maddr := r.metrics.Addr().String()

	m := scrape(t, maddr)
	for _, k := range []string{`wstap_sessions_active`, `wstap_sessions_ended_total{verdict="clean"}`,
		`wstap_frames_total{direction="client_to_upstream"}`, `wstap_handshake_latency_seconds_count`,
		`wstap_events_dropped_total`, `wstap_accept_errors_total`} {
		if v, ok := m[k]; !ok || v != 0 {
			t.Errorf("before any session %s = %v (present %v), want 0", k, v, ok)
		}
	}

	if m["process_open_fds"] <= 0 || m["go_goroutines"] <= 0 {
		t.Errorf("process and Go collectors missing: open fds %v, goroutines %v", m["process_open_fds"], m["go_goroutines"])
	}

	echoSession(t, "ws://"+addr+"/chat")
	echoSession(t, "ws://"+addr+"/chat")
	// Connection: close: an idle keep-alive connection would hold the
	// proxy's Shutdown for --header-timeout.
	req, err := http.NewRequest("GET", "http://"+addr+"/rest", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("plain GET through the proxy: %d, want gorilla's 400", resp.StatusCode)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GARBAGE\r\n\r\n")
	io.Copy(io.Discard, c)
	c.Close()

	deadline := time.Now().Add(5 * time.Second)
	for m = scrape(t, maddr); m[`wstap_sessions_ended_total{verdict="clean"}`] < 2 && time.Now().Before(deadline); m = scrape(t, maddr) {
		time.Sleep(10 * time.Millisecond)
	}
	// Per session: client→upstream 3 masked texts of 5 bytes (11 each), a
	// masked ping of 1 byte (7) and a masked close 1000 (8): 5 frames, 48
	// bytes; upstream→client 3 texts (7), a pong (3), a close (4): 5, 28.
	want := map[string]float64{
		`wstap_sessions_active`:                                      0,
		`wstap_sessions_opened_total`:                                2,
		`wstap_sessions_ended_total{verdict="clean"}`:                2,
		`wstap_sessions_ended_total{verdict="abnormal-client-drop"}`: 0,
		`wstap_sessions_abnormal_total{first="upstream"}`:            0,
		`wstap_frames_total{direction="client_to_upstream"}`:         10,
		`wstap_frames_total{direction="upstream_to_client"}`:         10,
		`wstap_frame_bytes_total{direction="client_to_upstream"}`:    96,
		`wstap_frame_bytes_total{direction="upstream_to_client"}`:    56,
		`wstap_pings_total{direction="client_to_upstream"}`:          2,
		`wstap_pings_total{direction="upstream_to_client"}`:          0,
		`wstap_pongs_total{direction="upstream_to_client"}`:          2,
		`wstap_handshake_latency_seconds_count`:                      2,
		`wstap_http_requests_total{status="400"}`:                    1,
		`wstap_rejected_requests_total`:                              1,
		`wstap_accept_errors_total`:                                  0,
		`wstap_events_dropped_total`:                                 0,
		`wstap_packets_dropped_total`:                                0,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if s := m[`wstap_handshake_latency_seconds_sum`]; s <= 0 || s > 2 {
		t.Errorf("handshake latency sum %v s, want a small positive figure", s)
	}

	stopped = true
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + maddr + "/metrics"); err == nil {
		t.Error("/metrics still served after stop")
	}
	b, err := os.ReadFile(filepath.Join(dir, "run.json"))
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Counters map[string]int64 `json:"counters"`
	}
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]int64{"sessions": 2, "abnormal": 0, "rejected": 1, "http_requests": 1, "accept_errors": 0} {
		if info.Counters[k] != v {
			t.Errorf("run.json counters.%s = %d, want %d", k, info.Counters[k], v)
		}
	}
}

// TestMetricsAddressInUse: a busy --metrics address fails the start, naming
// the flag, and leaves no proxy listening.
func TestMetricsAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	_, err = startProxy(&proxyOptions{listen: "127.0.0.1:0", upstream: "ws://127.0.0.1:1", out: dir,
		caDir: filepath.Join(dir, "ca"), metrics: ln.Addr().String()}, io.Discard)
	if err == nil || !strings.HasPrefix(err.Error(), "--metrics: ") {
		t.Fatalf("err %v, want one naming --metrics", err)
	}
	_, err = startProxy(&proxyOptions{listen: "127.0.0.1:0", upstream: "ws://127.0.0.1:1", out: dir,
		caDir: filepath.Join(dir, "ca"), metrics: "nonsense"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `--metrics: "nonsense"`) {
		t.Fatalf("err %v, want one naming --metrics and the value", err)
	}
}
