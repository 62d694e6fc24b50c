package main

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/internal/testkit"
	"github.com/wstap/wstap/proxy"
)

// Issue 14, item 5: forward mode off loopback, for JMeter engines on other
// hosts, without becoming an open intercepting proxy. The real binary
// listens on 0.0.0.0 with --allow and --proxy-auth; curl (--proxy-user, as
// JMeter's -u/-a) and gorilla/websocket are the clients.

const testProxyPassword = "pw-Zq81xK-s3cret"

// hostPort is the host:port of an httptest server.
func hostPort(ts *httptest.Server) string { return strings.TrimPrefix(ts.URL, "http://") }

// curlProxy runs curl through the proxy at addr and returns the status of
// the answer to the request (absolute form) or to the CONNECT (tunnel),
// and the response headers.
func curlProxy(t *testing.T, addr, target string, tunnel bool, user string, extra ...string) (status, headers string) {
	t.Helper()
	hdr := filepath.Join(t.TempDir(), "headers")
	args := []string{"-sS", "-o", os.DevNull, "-D", hdr, "--max-time", "10", "--proxy", "http://" + addr,
		"-w", "%{http_code} %{http_connect}"}
	args = append(args, extra...)
	if user != "" {
		args = append(args, "--proxy-user", user)
	}
	if tunnel {
		args = append(args, "--proxytunnel")
	}
	out, _ := exec.Command(testkit.NeedTool(t, "curl"), append(args, target)...).Output() // a refused CONNECT exits 56
	b, _ := os.ReadFile(hdr)
	f := strings.Fields(string(out))
	if len(f) != 2 {
		t.Fatalf("curl %s: output %q", target, out)
	}
	status = f[0]
	if tunnel {
		status = f[1]
	}
	return status, string(b)
}

func TestForwardModeAllowAndProxyAuth(t *testing.T) {
	testkit.NeedTool(t, "curl")
	allowed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "allowed target; Proxy-Authorization reached it:", r.Header.Get("Proxy-Authorization") != "")
	}))
	defer allowed.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "other") }))
	defer other.Close()
	echo, _ := testkit.EchoServer(t, true)
	echoHost := strings.TrimPrefix(echo, "wss://")
	plain, _ := testkit.EchoServer(t, false)
	plainHost := strings.TrimPrefix(plain, "ws://")

	ca, err := proxy.LoadOrCreateCA(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	_, port, _ := net.SplitHostPort(testkit.FreeAddr(t))
	addr := "127.0.0.1:" + port
	stderr := &testkit.SyncBuffer{}
	cmd := exec.Command(testkit.BuildWstap(t), "proxy", "--listen", "0.0.0.0:"+port, "--out", dir, "--ca-dir", ca.Dir,
		"--insecure-upstream", "--allow", hostPort(allowed)+","+echoHost, "--allow", plainHost, "--proxy-auth", "alice:"+testProxyPassword)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	testkit.WaitListening(t, addr, stderr)

	good, wrong := "alice:"+testProxyPassword, "alice:not-the-password"
	for _, c := range []struct {
		name, target string
		tunnel       bool
		user, want   string
	}{
		{"allowed, absolute form", allowed.URL + "/rest", false, good, "200"},
		{"allowed, CONNECT", allowed.URL + "/rest", true, good, "200"},
		{"other target, absolute form", other.URL + "/", false, good, "403"},
		{"other target, CONNECT", other.URL + "/", true, good, "403"},
		{"no credentials, absolute form", allowed.URL + "/", false, "", "407"},
		{"no credentials, CONNECT", allowed.URL + "/", true, "", "407"},
		{"wrong password, absolute form", allowed.URL + "/", false, wrong, "407"},
		{"wrong password, CONNECT", allowed.URL + "/", true, wrong, "407"},
	} {
		status, headers := curlProxy(t, addr, c.target, c.tunnel, c.user)
		if status != c.want {
			t.Errorf("%s: status %s, want %s; headers:\n%s", c.name, status, c.want, headers)
		}
		if c.want == "407" && !strings.Contains(headers, `Proxy-Authenticate: Basic realm="wstap"`) {
			t.Errorf("%s: 407 without Proxy-Authenticate: Basic realm=\"wstap\"; headers:\n%s", c.name, headers)
		}
	}

	// A WebSocket client through CONNECT with the right credentials gets
	// its session recorded; with wrong ones its dial fails with 407.
	pu, _ := url.Parse("http://" + addr)
	for _, pw := range []string{testProxyPassword, "nope"} {
		pu.User = url.UserPassword("alice", pw)
		d := websocket.Dialer{Proxy: http.ProxyURL(pu), TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, HandshakeTimeout: 5 * time.Second}
		c, _, err := d.Dial(echo+"/chat", nil)
		if pw == testProxyPassword {
			if err != nil {
				t.Fatalf("gorilla through CONNECT with Proxy-Authorization: %v\n%s", err, stderr)
			}
			c.WriteMessage(websocket.TextMessage, []byte("hello"))
			if _, m, err := c.ReadMessage(); err != nil || string(m) != "hello" {
				t.Errorf("echo through wstap: %q, %v", m, err)
			}
			c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
			c.ReadMessage()
			c.Close()
		} else if err == nil || !strings.Contains(err.Error(), "Proxy Authentication Required") {
			t.Errorf("gorilla with a wrong proxy password: %v, want a 407", err)
		}
	}
	// An upgrade in absolute form carries Proxy-Authorization in the very
	// head that becomes the record and the pcapng's client leg.
	status, _ := curlProxy(t, addr, "http://"+plainHost+"/upgrade", false, good, "--max-time", "1",
		"-H", "Upgrade: websocket", "-H", "Connection: Upgrade", "-H", "Sec-WebSocket-Version: 13",
		"-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")
	if status != "101" {
		t.Errorf("upgrade in absolute form: status %s, want 101", status)
	}
	time.Sleep(100 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("wstap proxy: %v\n%s", err, stderr)
	}
	if out, err := exec.Command(testkit.BuildWstap(t), "report", dir).CombinedOutput(); err != nil {
		t.Fatalf("wstap report: %v\n%s", err, out)
	}
	checkAdmissionRecords(t, dir, echoHost, plainHost, hostPort(other))
}

// checkAdmissionRecords: the refusals are http events with their reason;
// the WebSocket session is recorded, without Proxy-Authorization; the
// password (in clear or in its Basic form) is in no file of the run dir.
func checkAdmissionRecords(t *testing.T, dir, echoHost, plainHost, otherHost string) {
	t.Helper()
	counts := map[float64]int{}
	for _, e := range jsonLines(t, filepath.Join(dir, capture.EventsFile)) {
		if e["event"] != "http" {
			continue
		}
		st, _ := e["status"].(float64)
		counts[st]++
		reason, _ := e["reason"].(string)
		switch st {
		case 403:
			if !strings.Contains(reason, otherHost) || !strings.Contains(reason, "--allow") {
				t.Errorf("403 event reason %q: want the target %s and --allow", reason, otherHost)
			}
		case 407:
			if !strings.Contains(reason, "Proxy-Authorization") {
				t.Errorf("407 event reason %q: want what was wrong with Proxy-Authorization", reason)
			}
		}
	}
	// 403: curl twice; 407: curl four times and gorilla once.
	if counts[403] != 2 || counts[407] != 5 {
		t.Errorf("http events by status %v: want 2 of 403 and 5 of 407", counts)
	}
	targets := map[any]any{}
	for _, s := range jsonLines(t, filepath.Join(dir, capture.SessionsFile)) {
		targets[s["target"]] = s["verdict"]
	}
	if len(targets) != 2 || targets["wss://"+echoHost+"/chat"] != "clean" || targets["ws://"+plainHost+"/upgrade"] == nil {
		t.Errorf("sessions by target: %v; want a clean one to wss://%s/chat and one to ws://%s/upgrade", targets, echoHost, plainHost)
	}
	basic := base64.StdEncoding.EncodeToString([]byte("alice:" + testProxyPassword))
	entries, _ := os.ReadDir(dir)
	if len(entries) < 5 {
		t.Fatalf("run dir holds %d files", len(entries))
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{testProxyPassword, basic, "Proxy-Authorization: Basic", `"name":"Proxy-Authorization"`} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds %q", e.Name(), secret)
			}
		}
	}
	run, _ := os.ReadFile(filepath.Join(dir, capture.RunFile))
	if !bytes.Contains(run, []byte(`"alice:[redacted]"`)) {
		t.Errorf("run.json args do not show --proxy-auth as alice:[redacted]:\n%s", run)
	}
}

// Forward mode off loopback with neither --allow nor --proxy-auth is
// refused at start, exit 2, saying why; nothing is created.
func TestForwardModeOffLoopbackRefused(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "run")
	_, port, _ := net.SplitHostPort(testkit.FreeAddr(t))
	cmd := exec.Command(testkit.BuildWstap(t), "proxy", "--listen", "0.0.0.0:"+port, "--out", out, "--ca-dir", filepath.Join(dir, "ca"))
	b, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("wstap proxy --listen 0.0.0.0:%s: %v, want exit 2\n%s", port, err, b)
	}
	for _, want := range []string{"not loopback", "--allow", "--proxy-auth", "open intercepting proxy"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("message %q does not say %q", b, want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a refused start created the run dir %s", out)
	}
}

func TestRedactArgsProxyAuth(t *testing.T) {
	in := []string{"--listen", "0.0.0.0:8080", "--proxy-auth", "alice:s3cret", "-proxy-auth=bob:hunter2", "--proxy-auth=@auth.txt",
		"--proxy-auth", "nocolon-s3cret", "--upstream", "wss://h/x?access_token=tok-s3cret"}
	got := strings.Join(redactArgs(in), " ")
	want := "--listen 0.0.0.0:8080 --proxy-auth alice:[redacted] -proxy-auth=bob:[redacted] --proxy-auth=@auth.txt --proxy-auth [redacted] --upstream"
	if !strings.HasPrefix(got, want) || strings.Contains(got, "s3cret") || strings.Contains(got, "hunter2") {
		t.Errorf("redactArgs: %s\nwant it to start with %s and hold no password or token", got, want)
	}
}

// The admission flags: usage errors that name the flag and never quote a
// password; --proxy-auth @FILE reads USER:PASS from the file's first line.
func TestAdmissionFlags(t *testing.T) {
	authFile := filepath.Join(t.TempDir(), "auth")
	os.WriteFile(authFile, []byte("carol:from-file\r\nignored\n"), 0o600)
	for _, c := range []struct {
		o         proxyOptions
		want      string
		allow     []proxy.AllowRule
		proxyAuth string
	}{
		{o: proxyOptions{upstream: "ws://h", allow: multiFlag{"h"}}, want: "--allow and --proxy-auth are for forward mode"},
		{o: proxyOptions{upstream: "ws://h", proxyAuth: "u:p"}, want: "--allow and --proxy-auth are for forward mode"},
		{o: proxyOptions{listen: "0.0.0.0:1", allow: multiFlag{"http://h"}}, want: `--allow: allow entry "http://h"`},
		{o: proxyOptions{listen: "0.0.0.0:1", proxyAuth: "nocolon-s3cret"}, want: "--proxy-auth: want USER:PASS"},
		{o: proxyOptions{listen: "0.0.0.0:1", proxyAuth: "@" + authFile + ".missing"}, want: "--proxy-auth: open"},
		{o: proxyOptions{listen: "0.0.0.0:1", proxyAuth: "@" + authFile, allow: multiFlag{"a:443,b", "c"}},
			allow: []proxy.AllowRule{{Host: "a", Port: "443"}, {Host: "b"}, {Host: "c"}}, proxyAuth: "carol:from-file"},
	} {
		o := c.o
		if o.listen == "" {
			o.listen = "127.0.0.1:0"
		}
		var cfg proxy.Config
		err := o.check()
		if err == nil {
			err = o.admission(&cfg)
		}
		switch {
		case c.want != "":
			var ue usageErr
			if !errors.As(err, &ue) || !strings.Contains(ue.msg, c.want) || strings.Contains(ue.msg, "s3cret") {
				t.Errorf("%+v: %v, want a usage error saying %q", c.o, err, c.want)
			}
		case err != nil:
			t.Errorf("%+v: %v", c.o, err)
		case !reflect.DeepEqual(cfg.Allow, c.allow) || cfg.ProxyAuth != c.proxyAuth:
			t.Errorf("%+v: Allow %v, ProxyAuth %q; want %v, %q", c.o, cfg.Allow, cfg.ProxyAuth, c.allow, c.proxyAuth)
		}
	}
}
