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

	"github.com/wstap/wstap/internal/testkit"
)

// TestDiskFullRelayGoesOn records into a 256 KiB tmpfs (issue 9, item 6):
// the echo sessions keep working byte for byte after the disk is full, the
// lost records are counted in run.json, and stderr carries exactly one
// WARNING line about it.
func TestDiskFullRelayGoesOn(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt).CombinedOutput(); err != nil {
		testkit.SkipOrFail(t, "cannot mount a small tmpfs (needs root or CAP_SYS_ADMIN): %v %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })

	out := filepath.Join(mnt, "run")
	p := startProxyProc(t, echoURL(t), out)

	const sessions, messages = 20, 150
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	echoed := 0
	for s := 0; s < sessions; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			fail := func(err error) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("session %d: %w", s, err))
				mu.Unlock()
			}
			c, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://%s/disk/%d", p.addr, s), nil)
			if err != nil {
				fail(err)
				return
			}
			defer c.Close()
			for m := 0; m < messages; m++ {
				msg := bytes.Repeat([]byte{byte('a' + m%26)}, 1000+s)
				if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
					fail(err)
					return
				}
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, got, err := c.ReadMessage()
				if err != nil {
					fail(err)
					return
				}
				if !bytes.Equal(got, msg) {
					fail(fmt.Errorf("message %d: echo differs", m))
					return
				}
				mu.Lock()
				echoed++
				mu.Unlock()
			}
			c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
			c.ReadMessage()
		}(s)
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if echoed != sessions*messages {
		t.Errorf("%d of %d messages echoed with the disk full", echoed, sessions*messages)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(mnt, &st); err == nil && st.Bavail > 4 {
		t.Logf("the tmpfs still has %d free blocks: the disk was not filled", st.Bavail)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	code := p.wait(t, 30*time.Second)
	stderr := p.stderr.String()

	var warnings []string
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, "WARNING") {
			warnings = append(warnings, line)
		}
	}
	if len(warnings) != 1 {
		t.Errorf("%d WARNING lines on stderr, want exactly 1:\n%s", len(warnings), strings.Join(warnings, "\n"))
	}
	var run struct {
		Counters struct {
			Sessions       int64 `json:"sessions"`
			EventsDropped  int64 `json:"events_dropped"`
			PacketsDropped int64 `json:"packets_dropped"`
			SessionsLost   int64 `json:"sessions_lost"`
		} `json:"counters"`
		End *time.Time `json:"end"`
	}
	b, err := os.ReadFile(filepath.Join(out, "run.json"))
	if err != nil || json.Unmarshal(b, &run) != nil {
		t.Fatalf("run.json: %v %q", err, b)
	}
	c := run.Counters
	if run.End == nil || c.EventsDropped+c.PacketsDropped+c.SessionsLost == 0 || c.Sessions != sessions {
		t.Errorf("run.json after a full disk: end %v, counters %+v; want an end, %d sessions and the losses counted", run.End, c, sessions)
	}
	// What did reach the disk is whole lines.
	jsonLines(t, filepath.Join(out, "sessions.jsonl"))
	jsonLines(t, filepath.Join(out, "events.jsonl"))
	t.Logf("full disk: %d messages echoed; exit %d; counters %+v; warning: %s", echoed, code, c, strings.Join(warnings, " | "))
}
