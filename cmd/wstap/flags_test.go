package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wstap/wstap/capture"
)

// TestEveryHelpGoesToStdout: 'wstap CMD --help' of every registered command
// exits 0 with its usage and flags on stdout and nothing on stderr, so
// 'wstap CMD --help | less' shows it.
func TestEveryHelpGoesToStdout(t *testing.T) {
	if len(commands) < 5 {
		t.Fatalf("only %d commands registered", len(commands))
	}
	for name := range commands {
		for _, h := range []string{"--help", "-h"} {
			code, stdout, stderr := runCmd(name, h)
			if code != 0 || stderr != "" {
				t.Errorf("wstap %s %s: exit %d, stderr %q; want 0 and nothing", name, h, code, stderr)
			}
			if !strings.Contains(stdout, "wstap "+name) || !strings.Contains(stdout, "Examples:") {
				t.Errorf("wstap %s %s: stdout lacks its usage and examples:\n%s", name, h, stdout)
			}
		}
	}
	// The flags themselves, not only the text above them.
	for name, flag := range map[string]string{"proxy": "-upstream-ca", "demo": "-sessions"} {
		if _, stdout, _ := runCmd(name, "--help"); !strings.Contains(stdout, flag) {
			t.Errorf("wstap %s --help: no %s in\n%s", name, flag, stdout)
		}
	}
}

// TestProxyRefusesBeforeStarting: bad or conflicting flags are usage errors
// that name the flag, and nothing is created: no run dir, no CA. It calls
// the parser and startProxy rather than runProxy, which would wait for a
// signal if a proxy started after all.
func TestProxyRefusesBeforeStarting(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls"}, "--tls needs --upstream"},
		{[]string{"--upstream", "http://x"}, "--upstream \"http://x\""},
		{[]string{"--upstream", "wss://x", "--insecure-upstream", "--upstream-ca", "ca.pem"}, "--insecure-upstream and --upstream-ca conflict"},
		{[]string{"--upstream", "ws://x", "--pcap=false", "--pcap-snap", "64"}, "--pcap=false"},
		{[]string{"--upstream", "ws://x", "--pcap=false", "--pcap-legs", "both"}, "--pcap=false"},
		{[]string{"--upstream", "ws://x", "--pcap-legs", "two"}, "--pcap-legs \"two\": want one or both"},
		{[]string{"--upstream", "ws://x", "--listen", "nohost"}, "--listen \"nohost\""},
		{[]string{"--upstream", "ws://x", "--heartbeat", "("}, "--heartbeat \"(\""},
		{[]string{"--upstream", "ws://x", "extra"}, "unexpected argument \"extra\""},
		{[]string{"--upstream", "ws://x", "--tcp-keepalive", "-5s"}, "--tcp-keepalive -5s"},
	} {
		dir := t.TempDir()
		out, ca := filepath.Join(dir, "run"), filepath.Join(dir, "ca")
		args := append([]string{"--out", out, "--ca-dir", ca, "--listen", "127.0.0.1:0"}, c.args...)
		var stderr bytes.Buffer
		fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
		o := &proxyOptions{args: args}
		o.flags(fs)
		code, ok := parseFlags(fs, "proxy", proxyHelp, args, io.Discard, &stderr)
		if ok {
			r, err := startProxy(o, &stderr)
			if err == nil {
				r.stop()
			}
			var ue usageErr
			if errors.As(err, &ue) {
				code = usageError(&stderr, "proxy", "%s", ue.msg)
			}
		}
		if code != 2 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("wstap proxy %q: exit %d, stderr %q; want exit 2 naming %q", args, code, stderr.String(), c.want)
		}
		for _, p := range []string{out, ca} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("wstap proxy %q created %s before refusing", args, p)
			}
		}
	}
}

// TestTCPKeepAliveFlag: --tcp-keepalive reaches the proxy's configuration
// and run.json records it; without it both are 0 (no keep-alive probes).
func TestTCPKeepAliveFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want int64
	}{{nil, 0}, {[]string{"--tcp-keepalive", "5s"}, 5000}} {
		out := filepath.Join(t.TempDir(), "run")
		args := append([]string{"--out", out, "--upstream", "ws://127.0.0.1:9", "--listen", "127.0.0.1:0", "--pcap=false"}, c.args...)
		fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
		o := &proxyOptions{args: args}
		o.flags(fs)
		if _, ok := parseFlags(fs, "proxy", proxyHelp, args, io.Discard, io.Discard); !ok {
			t.Fatalf("wstap proxy %q: flags refused", args)
		}
		cfg, err := o.config()
		if err != nil || cfg.TCPKeepAlive.Milliseconds() != c.want {
			t.Errorf("wstap proxy %q: TCPKeepAlive %s (%v), want %d ms", args, cfg.TCPKeepAlive, err, c.want)
		}
		r, err := startProxy(o, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		r.stop()
		var info capture.RunInfo
		b, err := os.ReadFile(filepath.Join(out, "run.json"))
		if err != nil || json.Unmarshal(b, &info) != nil || info.TCPKeepAliveMS != c.want || !bytes.Contains(b, []byte(`"tcp_keepalive_ms"`)) {
			t.Errorf("wstap proxy %q: run.json %s (%v), want tcp_keepalive_ms %d", args, b, err, c.want)
		}
	}
}
