// Package testkit holds what the tests of several wstap packages need alike:
// outside programs that may be missing, gorilla/websocket echo upstreams, a
// CONNECT proxy, free loopback addresses, JSONL readers, tshark fields and a
// wstap binary built once per test binary.
//
// It imports no wstap package, so the tests of any of them may use it.
package testkit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Strict reports whether WSTAP_TEST_STRICT=1, under which a test that
// cannot run here (a program missing, no root) fails instead of skipping.
func Strict() bool { return os.Getenv("WSTAP_TEST_STRICT") == "1" }

// SkipOrFail skips the test with the message, or fails it under
// WSTAP_TEST_STRICT=1.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Strict() {
		t.Fatalf("%s (WSTAP_TEST_STRICT=1)", msg)
	}
	t.Skip(msg)
}

// installHints says how to get the outside programs the tests run.
var installHints = map[string]string{
	"java":             "install a JDK 17",
	"javac":            "install a JDK 17",
	"keytool":          "install a JDK 17",
	"tshark":           "apt-get install tshark",
	"capinfos":         "apt-get install tshark",
	"curl":             "apt-get install curl",
	"openssl":          "apt-get install openssl",
	"chromium":         "apt-get install -y chromium",
	"chromium-browser": "apt-get install -y chromium",
	"google-chrome":    "apt-get install -y chromium",
	"certutil":         "apt-get install -y libnss3-tools",
	"prometheus":       "apt-get install -y prometheus",
}

// NeedTool returns the path of the outside program name, or of the first of
// alternatives found when name is absent. When none is in PATH it skips the
// test, naming the program and how to install it, or fails it under
// WSTAP_TEST_STRICT=1.
func NeedTool(t testing.TB, name string, alternatives ...string) string {
	t.Helper()
	var err error
	for _, n := range append([]string{name}, alternatives...) {
		var p string
		if p, err = exec.LookPath(n); err == nil {
			return p
		}
	}
	hint := installHints[name]
	if hint == "" {
		hint = "install it"
	}
	what := name
	if len(alternatives) > 0 {
		what = strings.Join(append([]string{name}, alternatives...), " or ")
	}
	if Strict() {
		t.Fatalf("%s not found in PATH and WSTAP_TEST_STRICT=1: %v", what, err)
	}
	t.Skipf("%s not found in PATH; %s, or set WSTAP_TEST_STRICT=1 to fail instead", what, hint)
	return ""
}

// TsharkFields runs tshark on file with a display filter and returns the
// fields of each matching packet, one row per packet; fields with several
// occurrences are comma-separated. The TCP and IP checksums are verified
// (a packet with a bad one is flagged, not reassembled). It skips the test
// when tshark is missing (see NeedTool), fails it when tshark fails and
// reports anything tshark warns about, apart from its note about running as
// root.
func TsharkFields(t testing.TB, file, filter string, fields ...string) [][]string {
	t.Helper()
	tshark := NeedTool(t, "tshark")
	args := []string{"-r", file, "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
		"-Y", filter, "-T", "fields", "-E", "separator=/t", "-E", "aggregator=,", "-E", "occurrence=a"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tshark, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	for _, l := range strings.Split(stderr.String(), "\n") {
		if l != "" && !strings.HasPrefix(l, "Running as user") {
			t.Errorf("tshark warns: %s", l)
		}
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows
}

var wstapBin struct {
	once sync.Once
	path string
	err  error
}

// BuildWstap builds the wstap binary (without -race) once per test binary
// and returns its path.
func BuildWstap(t testing.TB) string {
	t.Helper()
	wstapBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "wstap-bin")
		if err != nil {
			wstapBin.err = err
			return
		}
		wstapBin.path = filepath.Join(dir, "wstap")
		out, err := exec.Command("go", "build", "-o", wstapBin.path, "github.com/wstap/wstap/cmd/wstap").CombinedOutput()
		if err != nil {
			wstapBin.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if wstapBin.err != nil {
		t.Fatal(wstapBin.err)
	}
	return wstapBin.path
}

// TsharkOpcodes counts the websocket frames of file per opcode, as tshark
// decodes them (see TsharkFields).
func TsharkOpcodes(t testing.TB, file string) map[int]int {
	t.Helper()
	got := map[int]int{}
	for _, row := range TsharkFields(t, file, "websocket", "websocket.opcode") {
		for _, v := range strings.Split(row[0], ",") {
			op, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("opcode %q: %v", v, err)
			}
			got[op]++
		}
	}
	return got
}
