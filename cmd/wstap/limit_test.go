package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wstap/wstap/internal/testkit"
)

// TestOpenFileLimitRefusesNewKeepsEstablished runs wstap with a hard
// open-file limit of 120 and opens more sessions than it can carry: the
// surplus is refused at once, one log line names the limit, and the
// sessions already open keep echoing (issue 8, docs/records.md rule 7).
func TestOpenFileLimitRefusesNewKeepsEstablished(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found: it sets the open-file limit of the proxy")
	}
	echoURL, _ := testkit.EchoServer(t, false)
	bin := testkit.BuildWstap(t)
	addr := testkit.FreeAddr(t)
	out := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command("bash", "-c", fmt.Sprintf("ulimit -n 120 && exec %s proxy --upstream %s --listen %s --out %s --pcap=false",
		bin, echoURL, addr, out))
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var logMu sync.Mutex
	var logLines []string
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			logLines = append(logLines, sc.Text())
			logMu.Unlock()
		}
	}()
	defer cmd.Process.Kill()
	testkit.WaitListening(t, addr)

	d := websocket.Dialer{HandshakeTimeout: 3 * time.Second}
	var open []*websocket.Conn
	refused := 0
	for i := 0; i < 70; i++ {
		t0 := time.Now()
		c, resp, err := d.Dial("ws://"+addr+"/", nil)
		if err != nil {
			refused++
			st := 0
			if resp != nil {
				st = resp.StatusCode
			}
			t.Logf("dial %d refused after %s: status %d %v", i, time.Since(t0).Round(time.Millisecond), st, err)
			continue
		}
		open = append(open, c)
	}
	if refused == 0 || len(open) < 20 {
		t.Fatalf("opened %d, refused %d: want some of each with a limit of 120 descriptors", len(open), refused)
	}
	for i, c := range open {
		msg := fmt.Sprintf("still here %d", i)
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatalf("established session %d: %v", i, err)
		}
		if _, got, err := c.ReadMessage(); err != nil || string(got) != msg {
			t.Fatalf("established session %d echo %q %v", i, got, err)
		}
	}
	for _, c := range open {
		c.Close()
	}
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	<-logDone
	n := 0
	for _, l := range logLines {
		if strings.Contains(l, "open-file limit reached") {
			n++
			if !strings.Contains(l, "soft 120") {
				t.Errorf("limit line does not name the limit: %s", l)
			}
		}
	}
	if n < 1 {
		t.Errorf("no log line names the open-file limit; stderr:\n%s", strings.Join(logLines, "\n"))
	}
	t.Logf("opened %d, refused %d, %d limit log line(s)", len(open), refused, n)
}
