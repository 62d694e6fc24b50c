package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wstap/wstap/proxy"
)

// Issue 9, item 7: a non-loopback listen address is warned about; a CA key
// readable by others is refused by 'wstap proxy --tls' with the fix.

func TestProxyWarnsOnNonLoopbackListen(t *testing.T) {
	for _, c := range []struct {
		listen string
		warn   bool
	}{
		{"127.0.0.1:0", false},
		{"localhost:0", false},
		{"[::1]:0", false},
		{"0.0.0.0:0", true},
		{":0", true},
	} {
		var stderr bytes.Buffer
		o := &proxyOptions{listen: c.listen, upstream: "ws://127.0.0.1:1", out: filepath.Join(t.TempDir(), "run")}
		r, err := startProxy(o, &stderr)
		if err != nil {
			if strings.Contains(c.listen, "::1") {
				continue // no IPv6 loopback here
			}
			t.Fatalf("--listen %s: %v", c.listen, err)
		}
		r.stop()
		got := strings.Contains(stderr.String(), "WARNING: listening on "+c.listen+", not loopback: anyone who can reach this address can use the proxy")
		if got != c.warn {
			t.Errorf("--listen %s: warning %v, want %v; stderr:\n%s", c.listen, got, c.warn, stderr.String())
		}
	}
}

func TestProxyTLSRefusesReadableCAKey(t *testing.T) {
	caDir := filepath.Join(t.TempDir(), "ca")
	ca, err := proxy.LoadOrCreateCA(caDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ca.KeyPath(), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"proxy", "--upstream", "ws://127.0.0.1:1", "--tls", "--ca-dir", caDir, "--listen", "127.0.0.1:0",
		"--out", filepath.Join(t.TempDir(), "run")}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "readable by others") || !strings.Contains(stderr.String(), "chmod 600 "+ca.KeyPath()) {
		t.Errorf("readable CA key: exit %d, stderr %q; want 1, the reason and the chmod fix", code, stderr.String())
	}
	// Fixed as told, the proxy starts.
	os.Chmod(ca.KeyPath(), 0o600)
	o := &proxyOptions{listen: "127.0.0.1:0", upstream: "ws://127.0.0.1:1", tls: true, caDir: caDir, out: filepath.Join(t.TempDir(), "run")}
	r, err := startProxy(o, &stderr)
	if err != nil {
		t.Fatalf("after chmod 600: %v", err)
	}
	r.stop()
}
