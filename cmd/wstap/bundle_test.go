package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testRunDir writes a small run dir whose one session sent a bearer token.
func testRunDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	session := `{"id":"s1","client_addr":"127.0.0.1:5000","target":"ws://127.0.0.1:9000/chat?access_token=AT-cli-secret",` +
		`"start":"2026-03-01T10:00:00Z","duration_ms":1000,"handshake":{"status":101,"request_headers":[{"name":"Authorization","value":"Bearer cli-s3cr3t"}],` +
		`"response_headers":[],"subprotocol":"","extensions":"","latency_ms":3},"tls":{"client":null,"upstream":null},` +
		`"frames":{"client_to_upstream":{"frames":1,"bytes":10,"text":1},"upstream_to_client":{}},"keepalive":{},"close":{"client":null,"upstream":null},` +
		`"end":{"at":"2026-03-01T10:00:01Z","first":"upstream","how":"eof","error":""},"client_close_code":1006,"upstream_close_code":1006,` +
		`"abnormal":true,"verdict":"abnormal-upstream-drop","findings":[],"concurrent_at_end":1}` + "\n"
	events := `{"time":"2026-03-01T10:00:00.5Z","level":"info","session":"s1","event":"message","dir":"client_to_upstream","opcode":1,"len":4,"data":"msg-s3cr3t"}` + "\n"
	for name, data := range map[string]string{"sessions.jsonl": session, "events.jsonl": events,
		"run.json": `{"version":"t","args":["proxy"]}`, "keylog.txt": "CLIENT_RANDOM 00 key-s3cr3t\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runCmd(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestBundleCommand(t *testing.T) {
	dir := testRunDir(t)
	out := filepath.Join(t.TempDir(), "evidence.tar.gz")
	if code, _, stderr := runCmd("bundle", dir, "-o", out); code != 0 {
		t.Fatalf("wstap bundle: exit %d\n%s", code, stderr)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s is not gzip: %v", out, err)
	}
	tr := tar.NewReader(gz)
	names := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names[h.Name] = true
		data, _ := io.ReadAll(tr)
		for _, s := range []string{"AT-cli-secret", "cli-s3cr3t", "msg-s3cr3t", "key-s3cr3t"} {
			if strings.Contains(string(data), s) {
				t.Errorf("%s holds %q", h.Name, s)
			}
		}
	}
	for _, n := range []string{"README.txt", "sessions.jsonl", "events.jsonl", "run.json", "session.har", "summary.txt"} {
		if !names[n] {
			t.Errorf("bundle lacks %s (has %v)", n, names)
		}
	}
	if names["keylog.txt"] {
		t.Error("bundle has keylog.txt without --include-keylog")
	}
}

func TestBundleCommandUsage(t *testing.T) {
	dir := testRunDir(t)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"bundle", dir}, 2, "-o FILE.tar.gz is required"},
		{[]string{"bundle", "-o", "x.tar.gz"}, 2, "no RUN_DIR given"},
		{[]string{"bundle", dir, dir, "-o", "x.tar.gz"}, 2, "one RUN_DIR at a time"},
		{[]string{"bundle", "--bogus"}, 2, "bogus"},
		{[]string{"bundle", filepath.Join(dir, "missing"), "-o", filepath.Join(t.TempDir(), "x.tar.gz")}, 1, "missing"},
		{[]string{"bundle", dir, "-o", filepath.Join(dir, "no", "such", "x.tar.gz")}, 1, "-o"},
		{[]string{"har", dir}, 2, "-o FILE.har is required"},
		{[]string{"har", t.TempDir(), "-o", filepath.Join(t.TempDir(), "x.har")}, 1, "not a wstap run dir"},
	} {
		code, _, stderr := runCmd(c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("wstap %q: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
	for _, cmd := range []string{"bundle", "har"} {
		code, stdout, _ := runCmd(cmd, "--help")
		if code != 0 || !strings.Contains(stdout, "Examples:") || !strings.Contains(stdout, "-include-payloads") {
			t.Errorf("wstap %s --help: exit %d\n%s", cmd, code, stdout)
		}
	}
}

func TestHARCommand(t *testing.T) {
	dir := testRunDir(t)
	out := filepath.Join(t.TempDir(), "run.har")
	if code, _, stderr := runCmd("har", "--include-payloads", dir, "-o", out, "--har-max-messages", "5"); code != 0 {
		t.Fatalf("wstap har: exit %d\n%s", code, stderr)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Log struct {
			Version string `json:"version"`
			Entries []struct {
				ResourceType string `json:"_resourceType"`
				Messages     []struct {
					Type string `json:"type"`
					Data string `json:"data"`
				} `json:"_webSocketMessages"`
			} `json:"entries"`
		} `json:"log"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if doc.Log.Version != "1.2" || len(doc.Log.Entries) != 1 || doc.Log.Entries[0].ResourceType != "websocket" {
		t.Fatalf("unexpected HAR: %s", raw)
	}
	if m := doc.Log.Entries[0].Messages; len(m) != 1 || m[0].Type != "send" || m[0].Data != "msg-s3cr3t" {
		t.Errorf("--include-payloads: messages %+v, want the one sent message with its data", m)
	}
	if strings.Contains(string(raw), "cli-s3cr3t") || strings.Contains(string(raw), "AT-cli-secret") {
		t.Errorf("HAR holds a header or query secret:\n%s", raw)
	}
}
