package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wstap/wstap/internal/testkit"
)

// A headless Chromium driven over the Chrome DevTools Protocol (CDP): the
// test only asks the browser to run a script; the WebSocket under test is
// Chromium's own. CDP messages are JSON objects {id, method, params,
// sessionId} answered by {id, result} or {id, error}
// (https://chromedevtools.github.io/devtools-protocol/).

// chromiumProc is a running headless Chromium attached to one blank page.
type chromiumProc struct {
	cmd     *exec.Cmd
	stderr  *testkit.SyncBuffer
	done    chan error
	cdp     *websocket.Conn
	nextID  int
	session string // CDP session of the page
}

// chromiumFlags are the flags of every run: headless, no sandbox (CI runs as
// root), no QUIC (it would bypass an HTTP proxy), nothing the browser does on
// its own (background networking, updates, sync), the forward proxy also for
// loopback targets (Chromium bypasses the proxy for them unless told
// "<-loopback>"), and the DevTools endpoint on a port of its choosing.
func chromiumFlags(userData, proxyAddr string) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + userData, "--proxy-server=http://" + proxyAddr, "--proxy-bypass-list=<-loopback>",
		"--remote-debugging-port=0", "about:blank"}
}

// startChromium starts headless Chromium with HOME set to home (so its NSS
// database is home/.pki/nssdb) and the forward proxy at proxyAddr, connects
// to its DevTools endpoint and attaches to a new blank page. The browser is
// closed when the test ends (see close).
func startChromium(t *testing.T, bin, home, proxyAddr string) *chromiumProc {
	t.Helper()
	userData := filepath.Join(t.TempDir(), "chromium-profile")
	c := &chromiumProc{stderr: &testkit.SyncBuffer{}, done: make(chan error, 1)}
	c.cmd = exec.Command(bin, chromiumFlags(userData, proxyAddr)...)
	c.cmd.Env = append(os.Environ(), "HOME="+home)
	c.cmd.Stdout, c.cmd.Stderr = c.stderr, c.stderr
	// Its own process group, so that close can end the zygote and renderers
	// this browser started, and nothing else.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() { c.close(t) })

	wsURL := c.devtoolsURL(t, userData)
	conn, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatalf("dialing Chromium's DevTools endpoint %s: %v\nstderr:\n%s", wsURL, err, c.stderr)
	}
	c.cdp = conn
	var target struct {
		TargetID string `json:"targetId"`
	}
	c.call(t, "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	c.call(t, "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	c.session = attached.SessionID
	return c
}

// devtoolsURL waits for the DevToolsActivePort file Chromium writes into its
// profile (first line the port, second the browser's WebSocket path).
func (c *chromiumProc) devtoolsURL(t *testing.T, userData string) string {
	t.Helper()
	file := filepath.Join(userData, "DevToolsActivePort")
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-c.done:
			c.done <- err
			t.Fatalf("Chromium exited before its DevTools endpoint was up: %v\nstderr:\n%s", err, c.stderr)
		default:
		}
		b, err := os.ReadFile(file)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if err == nil && len(lines) == 2 {
			return "ws://127.0.0.1:" + lines[0] + lines[1]
		}
	}
	t.Fatalf("no %s after 30s\nstderr:\n%s", file, c.stderr)
	return ""
}

// call sends a CDP command (to the page when attached) and decodes its result
// into out, skipping the events that arrive meanwhile. A CDP error fails the
// test.
func (c *chromiumProc) call(t *testing.T, method string, params any, out any) {
	t.Helper()
	c.nextID++
	msg := map[string]any{"id": c.nextID, "method": method, "params": params}
	if c.session != "" {
		msg["sessionId"] = c.session
	}
	c.cdp.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.cdp.WriteJSON(msg); err != nil {
		t.Fatalf("CDP %s: writing: %v", method, err)
	}
	c.cdp.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		var resp struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := c.cdp.ReadJSON(&resp); err != nil {
			t.Fatalf("CDP %s: reading: %v\nChromium stderr:\n%s", method, err, c.stderr)
		}
		if resp.ID != c.nextID {
			continue // an event, or the answer to another session's command
		}
		if resp.Error != nil {
			t.Fatalf("CDP %s: error %d %s", method, resp.Error.Code, resp.Error.Message)
		}
		if out != nil {
			if err := json.Unmarshal(resp.Result, out); err != nil {
				t.Fatalf("CDP %s: result %s: %v", method, resp.Result, err)
			}
		}
		return
	}
}

// evaluate runs expression in the page, awaits the promise it returns and
// decodes the value into out; a thrown exception or a rejected promise fails
// the test with its text.
func (c *chromiumProc) evaluate(t *testing.T, expression string, out any) {
	t.Helper()
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	c.call(t, "Runtime.evaluate", map[string]any{"expression": expression, "awaitPromise": true, "returnByValue": true}, &res)
	if e := res.ExceptionDetails; e != nil {
		t.Fatalf("script failed in Chromium: %s %s", e.Text, e.Exception.Description)
	}
	if err := json.Unmarshal(res.Result.Value, out); err != nil {
		t.Fatalf("script value %s: %v", res.Result.Value, err)
	}
}

// close asks the browser to close (Browser.close), waits up to 10 s, then
// kills its process group. It may be called twice.
func (c *chromiumProc) close(t *testing.T) {
	if c.cmd == nil {
		return
	}
	if c.cdp != nil {
		c.cdp.SetWriteDeadline(time.Now().Add(2 * time.Second))
		c.cdp.WriteJSON(map[string]any{"id": 1 << 30, "method": "Browser.close"})
		c.cdp.Close()
	}
	exited := false
	select {
	case <-c.done:
		exited = true
	case <-time.After(10 * time.Second):
		t.Logf("Chromium did not close within 10s: killing its process group %d", c.cmd.Process.Pid)
	}
	// The zygote and renderers may outlive the browser process for a moment.
	syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	if !exited {
		<-c.done
	}
	c.cmd = nil
}

// String describes the browser for failure messages.
func (c *chromiumProc) String() string { return fmt.Sprintf("chromium stderr:\n%s", c.stderr) }
