package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wstap/wstap/internal/platform"
	"github.com/wstap/wstap/internal/testkit"
)

// wstapLoad runs `wstap load args...` and returns its exit code and output.
func wstapLoad(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"load"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestLoadCommandThroughWstap: 1,000 sessions through wstap in reverse mode
// to a gorilla echo server, none failed or dropped, echoes timed.
func TestLoadCommandThroughWstap(t *testing.T) {
	upURL, _ := testkit.EchoServer(t, false)
	dir := t.TempDir()
	r, err := startProxy(&proxyOptions{listen: "127.0.0.1:0", upstream: upURL,
		out: dir, caDir: filepath.Join(dir, "ca"), maxHeaderBytes: 64 << 10, headerTimeout: 30 * time.Second,
		latePong: 5 * time.Second, noKeepalive: 30 * time.Second, maxPerToken: 3, args: []string{"test"}}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := wstapLoad("--url", "ws://"+r.srv.Addr().String()+"/echo", "--sessions", "1000",
		"--ramp", "1s", "--hold", "1s", "--ping", "300ms", "--message-every", "200ms", "--header", "X-Plan: chat")
	if err := r.stop(); err != nil {
		t.Error(err)
	}
	t.Logf("\n%s", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"opened       1000 of 1000", "failed       0", "1000 clean", "dropped 1006 0", "RTT p50 "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	records, err := os.ReadFile(filepath.Join(dir, "sessions.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(records, []byte("\n")); n != 1000 {
		t.Errorf("wstap recorded %d sessions, want 1000", n)
	}
}

// TestLoadCommandIdleDrops is the control group of the 1006 question: against
// a platform that drops after 1 s of client silence, --ping 0 reports every
// session dropped about 1 s after opening and --ping 300ms none.
func TestLoadCommandIdleDrops(t *testing.T) {
	p, err := platform.Start(platform.Config{IdleTimeout: 1e9})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var wg sync.WaitGroup
	outs := map[string]string{}
	var mu sync.Mutex
	for _, ping := range []string{"0", "300ms"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, out, errOut := wstapLoad("--url", p.URL(), "--sessions", "100", "--ramp", "200ms", "--hold", "1500ms",
				"--ping", ping, "--message-every", "0", "--subprotocol", platform.Subprotocol)
			if code != 0 {
				t.Errorf("--ping %s: exit %d: %s", ping, code, errOut)
			}
			mu.Lock()
			outs[ping] = out
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Logf("--ping 0:\n%s\n--ping 300ms:\n%s", outs["0"], outs["300ms"])
	if !strings.Contains(outs["0"], "dropped 1006 100 without a close frame (eof ×100), after p50 1") {
		t.Error("--ping 0: want all 100 sessions dropped by a FIN about 1s after opening")
	}
	if !strings.Contains(outs["300ms"], "dropped 1006 0\n") || !strings.Contains(outs["300ms"], "100 clean") {
		t.Error("--ping 300ms: want no drop and 100 clean closes")
	}
}

func TestLoadCommandUsage(t *testing.T) {
	code, out, _ := wstapLoad("--help")
	if code != 0 || !strings.Contains(out, "Examples:\n  wstap load --url wss://") || !strings.Contains(out, "-message-every") {
		t.Errorf("--help: exit %d, output %q", code, out)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--sessions", "10"}, 2, "--url"},
		{[]string{"--url", "ws://127.0.0.1:1/", "--sessions", "ten"}, 2, "-sessions"},
		{[]string{"--url", "ws://127.0.0.1:1/"}, 2, "--sessions"},
		{[]string{"--url", "http://127.0.0.1:1/", "--sessions", "1"}, 2, "--url"},
		{[]string{"--url", "ws://127.0.0.1:1/", "--sessions", "1", "--header", "no colon"}, 2, "-header"},
		{[]string{"--url", "ws://127.0.0.1:1/", "--sessions", "1", "--ping", "soon"}, 2, "-ping"},
		{[]string{"--url", "ws://127.0.0.1:1/", "--sessions", "1", "--proxy", "127.0.0.1:8080"}, 2, "--proxy"},
		{[]string{"--url", "ws://127.0.0.1:1/", "--sessions", "1", "--bogus"}, 2, "-bogus"},
		{[]string{"--url", "wss://127.0.0.1:1/", "--sessions", "1", "--ca", "/nonexistent/ca.pem"}, 1, "/nonexistent/ca.pem"},
	} {
		code, _, errOut := wstapLoad(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d naming %s", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}
