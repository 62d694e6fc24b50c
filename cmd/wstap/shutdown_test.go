package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/internal/testkit"
)

// Issue 9, item 5: SIGTERM with 2,000 sessions open records every one as
// proxy-shutdown and leaves files that parse; SIGKILL leaves whole JSONL
// lines only. The proxy is the real binary (built without -race).

// echoURL is the ws:// URL of a gorilla echo server.
func echoURL(t *testing.T) string {
	u, _ := testkit.EchoServer(t, false)
	return u
}

// proxyProc is a running wstap proxy process.
type proxyProc struct {
	cmd    *exec.Cmd
	addr   string
	out    string
	stderr *testkit.SyncBuffer
	done   chan error
}

// startProxyProc is startWstap in reverse mode, in front of upstream.
func startProxyProc(t *testing.T, upstream, out string, extra ...string) *proxyProc {
	t.Helper()
	return startWstap(t, out, append([]string{"--upstream", upstream}, extra...)...)
}

// wait waits for the process to exit and returns its exit code.
func (p *proxyProc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		if err == nil {
			return 0
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		t.Fatalf("wait: %v", err)
	case <-time.After(d):
		t.Fatalf("wstap did not exit within %s; stderr:\n%s", d, p.stderr)
	}
	return -1
}

// jsonLines checks that a JSONL file holds whole lines only, each a JSON
// object, and returns them.
func jsonLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Errorf("%s does not end with a newline: last bytes %q", filepath.Base(path), b[max(0, len(b)-80):])
	}
	var out []map[string]any
	for i, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		if len(b) == 0 {
			break
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Errorf("%s line %d does not parse (%v): %.200q", filepath.Base(path), i+1, err, line)
			continue
		}
		out = append(out, m)
	}
	return out
}

// openSessions opens n sessions through addr, each echoing one message,
// with limited parallelism; it returns the open connections.
func openSessions(t *testing.T, addr string, n int) []*websocket.Conn {
	t.Helper()
	conns := make([]*websocket.Conn, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	var mu sync.Mutex
	var errs []error
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 512, WriteBufferSize: 512}
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			c, _, err := d.Dial(fmt.Sprintf("ws://%s/s/%d", addr, i), nil)
			if err == nil {
				msg := []byte(fmt.Sprintf("hello %d", i))
				if err = c.WriteMessage(websocket.TextMessage, msg); err == nil {
					var got []byte
					c.SetReadDeadline(time.Now().Add(10 * time.Second))
					if _, got, err = c.ReadMessage(); err == nil && !bytes.Equal(got, msg) {
						err = fmt.Errorf("echo %q, want %q", got, msg)
					}
					c.SetReadDeadline(time.Time{})
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("session %d: %w", i, err))
				return
			}
			conns[i] = c
		}(i)
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d sessions failed, first: %v", len(errs), n, errs[0])
	}
	return conns
}

func TestShutdownSIGTERMRecordsEverySession(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	out := filepath.Join(t.TempDir(), "run")
	p := startProxyProc(t, echoURL(t), out)
	start := time.Now()
	conns := openSessions(t, p.addr, n)
	opened := time.Since(start)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	sigAt := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0; stderr:\n%s", code, p.stderr)
	}
	stopped := time.Since(sigAt)

	// Every client saw its connection end.
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := c.ReadMessage(); err == nil {
			t.Fatalf("session %d still delivers messages after the proxy exited", i)
		}
	}

	recs := jsonLines(t, filepath.Join(out, "sessions.jsonl"))
	byVerdict := map[string]int{}
	ids := map[string]bool{}
	for _, r := range recs {
		byVerdict[fmt.Sprint(r["verdict"])]++
		id := fmt.Sprint(r["id"])
		if ids[id] {
			t.Errorf("session %s recorded twice", id)
		}
		ids[id] = true
		if end, _ := r["end"].(map[string]any); end["how"] != "shutdown" || end["first"] != "proxy" {
			t.Errorf("session %s: end %v, want first proxy, how shutdown", id, r["end"])
			break
		}
	}
	if len(recs) != n || byVerdict["proxy-shutdown"] != n {
		t.Errorf("%d records, by verdict %v; want %d proxy-shutdown", len(recs), byVerdict, n)
	}
	events := jsonLines(t, filepath.Join(out, "events.jsonl"))
	var run struct {
		End      *time.Time `json:"end"`
		Counters struct {
			Sessions      int64 `json:"sessions"`
			EventsDropped int64 `json:"events_dropped"`
		} `json:"counters"`
	}
	b, err := os.ReadFile(filepath.Join(out, "run.json"))
	if err != nil || json.Unmarshal(b, &run) != nil {
		t.Fatalf("run.json: %v %s", err, b)
	}
	if run.End == nil || run.Counters.Sessions != int64(n) {
		t.Errorf("run.json: end %v, sessions %d; want an end and %d", run.End, run.Counters.Sessions, n)
	}
	t.Logf("%d sessions opened in %s; SIGTERM → exit 0 in %s; %d records (%v), %d events (%d dropped)",
		n, opened.Round(time.Millisecond), stopped.Round(time.Millisecond), len(recs), byVerdict, len(events), run.Counters.EventsDropped)

	pcap := filepath.Join(out, "capture.pcapng")
	tshark := testkit.NeedTool(t, "tshark")
	tout, err := exec.Command(tshark, "-r", pcap, "-Y", "websocket", "-T", "fields", "-e", "websocket.opcode").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark -r %s: %v\n%.2000s", pcap, err, tout)
	}
	frames := strings.Count(string(tout), "\n")
	if frames < 2*n {
		t.Errorf("tshark decodes %d websocket frames, want at least %d (a message and its echo per session)", frames, 2*n)
	}
	t.Logf("tshark reads the pcapng: %d websocket frames", frames)
}

func TestShutdownSIGKILLLeavesWholeLines(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	p := startProxyProc(t, echoURL(t), out)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sessions sync.Map
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c, _, err := d.Dial(fmt.Sprintf("ws://%s/k/%d/%d", p.addr, g, i), nil)
				if err != nil {
					return
				}
				sessions.Store(fmt.Sprint(g, i), true)
				for m := 0; m < 5; m++ {
					msg := bytes.Repeat([]byte{'m'}, 100+m*1000)
					if c.WriteMessage(websocket.BinaryMessage, msg) != nil {
						break
					}
					if _, _, err := c.ReadMessage(); err != nil {
						break
					}
					if m == 2 {
						c.WriteControl(websocket.PingMessage, []byte("k"), time.Now().Add(time.Second))
					}
				}
				c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				c.ReadMessage()
				c.Close()
			}
		}(g)
	}
	time.Sleep(1500 * time.Millisecond)
	p.cmd.Process.Kill()
	p.wait(t, 10*time.Second)
	close(stop)
	wg.Wait()

	recs := killedLines(t, filepath.Join(out, "sessions.jsonl"))
	events := killedLines(t, filepath.Join(out, "events.jsonl"))
	opened := 0
	sessions.Range(func(any, any) bool { opened++; return true })
	if recs == 0 || events == 0 {
		t.Errorf("after 1.5 s of traffic: %d session records, %d events; want some of each", recs, events)
	}
	t.Logf("SIGKILL after %d sessions: %d whole session lines, %d whole event lines on disk", opened, recs, events)
}

// killedLines checks a JSONL file of a proxy killed with SIGKILL
// (docs/records.md, "Whole lines"): every line parses, except that the last
// may be cut short, without its newline — and then the run-dir reader counts
// it as the one bad line and reads every other. It returns the whole lines.
func killedLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	whole, wantBad := 0, 0
	if len(b) > 0 && b[len(b)-1] != '\n' {
		i := bytes.LastIndexByte(b, '\n')
		t.Logf("%s: the kill cut the last line after %d bytes: %.80q", filepath.Base(path), len(b)-i-1, b[i+1:])
		if json.Valid(b[i+1:]) {
			whole++ // cut between its last byte and its newline
		} else {
			wantBad = 1
		}
		b = b[:i+1]
	}
	for i, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if !json.Valid(line) {
			t.Errorf("%s line %d, before the last, does not parse: %.200q", filepath.Base(path), i+1, line)
		}
		whole++
	}
	var bad capture.BadLines
	read := 0
	if err := capture.ReadJSONL(path, &bad, func(*map[string]any) error { read++; return nil }); err != nil {
		t.Fatal(err)
	}
	if bad.Count != wantBad || read != whole {
		t.Errorf("%s: the run-dir reader read %d lines and counted %d bad (%v); want %d and %d", filepath.Base(path), read, bad.Count, bad.Examples, whole, wantBad)
	}
	return whole
}
