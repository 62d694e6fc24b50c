package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestQuickSmoke runs the harness end to end with tiny figures against direct
// and wstap. It is not part of 'go test ./...' by default: it builds wstap and
// takes about a minute. Run it with WSTAP_BENCH=1.
func TestQuickSmoke(t *testing.T) {
	if os.Getenv("WSTAP_BENCH") != "1" {
		t.Skip("set WSTAP_BENCH=1 to run the benchmark harness smoke test")
	}
	out := filepath.Join(t.TempDir(), "bench.json")
	o, err := parseFlags([]string{"--quick", "--install=false", "--targets", "direct,wstap", "--n", "50",
		"--latency-sessions", "20", "--hold", "3s", "--settle", "1s", "--latency-time", "3s", "--throughput-time", "2s",
		"--handshake-time", "2s", "--out", out})
	if err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), o, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	res := string(b)
	for _, want := range []string{`"throughput_16k"`, `"handshakes"`, `"hold"`, `"latency"`} {
		if !strings.Contains(res, want) {
			t.Errorf("bench.json has no %s", want)
		}
	}
}

// TestMain lets the test binary serve as the harness's echo server (the
// harness re-runs its own executable with "echo").
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "echo" {
		if err := echoMain(os.Args[2:]); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}
