//go:build unix

package main

import (
	"bytes"
	"crypto/tls"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/internal/testkit"
	"github.com/wstap/wstap/proxy"
)

// Issue 14, item 4: a run dir keeps its secrets. After a real proxy run
// (the binary, TLS on both legs, the pcapng rotated) and 'wstap report',
// the dir is 0700 and every file in it 0600, whatever the umask: 000 would
// widen modes left to it, 277 would narrow them. The redacted bundle, made
// to be shared, is 0644; one that keeps the key log is 0600.

// wstapUnder runs the wstap binary with umask mask.
func wstapUnder(t *testing.T, mask string, args ...string) *exec.Cmd {
	t.Helper()
	sh := append([]string{"-c", `umask "$0" && exec "$@"`, mask, testkit.BuildWstap(t)}, args...)
	return exec.Command("sh", sh...)
}

func TestRunDirModes(t *testing.T) {
	for _, mask := range []string{"000", "277"} {
		t.Run("umask"+mask, func(t *testing.T) { runDirModes(t, mask) })
	}
}

func runDirModes(t *testing.T, mask string) {
	upstream, _ := testkit.EchoServer(t, true)
	ca, err := proxy.LoadOrCreateCA(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	addr := testkit.FreeAddr(t)
	stderr := &testkit.SyncBuffer{}
	cmd := wstapUnder(t, mask, "proxy", "--upstream", upstream, "--tls", "--insecure-upstream", "--ca-dir", ca.Dir,
		"--listen", addr, "--out", dir, "--pcap-max-mb", "1")
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	testkit.WaitListening(t, addr, stderr)

	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial("wss://"+addr+"/chat", nil)
	if err != nil {
		t.Fatalf("dial through wstap: %v\n%s", err, stderr)
	}
	msg := bytes.Repeat([]byte("x"), 600<<10)
	for range 3 { // 3.6 MB both ways: the pcapng rotates at 1 MiB
		c.WriteMessage(websocket.BinaryMessage, msg)
		if _, _, err := c.ReadMessage(); err != nil {
			t.Fatalf("echo: %v", err)
		}
	}
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	c.ReadMessage()
	c.Close()
	time.Sleep(100 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("wstap proxy: %v\n%s", err, stderr)
	}
	if out, err := wstapUnder(t, mask, "report", dir).CombinedOutput(); err != nil {
		t.Fatalf("wstap report: %v\n%s", err, out)
	}
	checkRunDirModes(t, dir, capture.RunFile, capture.EventsFile, capture.SessionsFile, capture.PcapFile,
		"capture-0002.pcapng", capture.KeylogFile, "report.html")

	elsewhere := t.TempDir()
	for _, c := range []struct {
		args []string
		mode fs.FileMode
	}{
		{[]string{"bundle", dir, "-o", filepath.Join(elsewhere, "evidence.tar.gz")}, 0o644},
		{[]string{"bundle", dir, "--include-keylog", "-o", filepath.Join(elsewhere, "keys.tar.gz")}, 0o600},
		{[]string{"report", dir, "--html", filepath.Join(elsewhere, "report.html")}, 0o644},
	} {
		if out, err := wstapUnder(t, mask, c.args...).CombinedOutput(); err != nil {
			t.Fatalf("wstap %q: %v\n%s", c.args, err, out)
		}
		fi, err := os.Stat(c.args[len(c.args)-1])
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != c.mode {
			t.Errorf("wstap %q under umask %s: mode %o, want %o", c.args, mask, fi.Mode().Perm(), c.mode)
		}
	}
	checkRunDirModes(t, dir) // a report or bundle written elsewhere leaves the run dir as it was
}

// checkRunDirModes stats everything in dir: the dir 0700, every file 0600,
// nothing else in it; the files named must be there.
func checkRunDirModes(t *testing.T, dir string, want ...string) {
	t.Helper()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("run dir %s: mode %o, want 700", dir, fi.Mode().Perm())
	}
	seen := map[string]bool{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		seen[e.Name()] = true
		if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want a file with mode 0600", e.Name(), fi.Mode())
		}
	}
	for _, name := range want {
		if !seen[name] {
			t.Errorf("%s missing from the run dir; it holds %v", name, seen)
		}
	}
}
