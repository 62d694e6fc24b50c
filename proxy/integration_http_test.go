package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Live tests of the plain HTTP side of forward mode (issue 3): the REST calls
// of a load plan go through wstap too, and their 429s are logged.

// TestIntegrationCurlForward429: curl -x through forward mode to an HTTPS
// endpoint that answers 429 sees the 429, and events.jsonl logs it. It runs
// twice, each time with its own endpoint and proxy: each proxy trusts its own
// --upstream-ca, not the first one's.
func TestIntegrationCurlForward429(t *testing.T) {
	t.Parallel()
	curl := caNeedTool(t, "curl")
	for i := 0; i < 2; i++ {
		t.Run(fmt.Sprint(i), func(t *testing.T) { curl429(t, curl) })
	}
}

func curl429(t *testing.T, curl string) {
	var hits sync.Map
	// The endpoint's certificate comes from a CA of its own, which only
	// this proxy trusts.
	upCA := caNew(t)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Store(r.URL.Path, r.Header.Get("Authorization"))
		w.Header().Set("Retry-After", "7")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	}))
	leaf, err := upCA.Leaf("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	// Certificates, not GetCertificate: httptest fills in its own certificate,
	// which a ClientHello without SNI would get.
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{*leaf}}
	// The CONNECT dials the endpoint before the request comes; that
	// connection goes unused and its TLS handshake fails, quietly.
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	p := startForwardProxy(t, func(c *Config) { c.UpstreamCAs = upCA.Pool() })
	caPEM := writeCAPEM(t, p.ca)
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	target := "https://127.0.0.1:" + port + "/api/v1/orders?token=s3cret"
	out, err := runTool(t, curl, "-sS", "-x", "http://"+p.srv.Addr().String(), "--cacert", caPEM,
		"-H", "Authorization: Bearer abc", "-o", "/dev/null", "-D", "-", "-w", "status=%{http_code}", target)
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	if !strings.Contains(out, "status=429") || !strings.Contains(strings.ToLower(out), "retry-after: 7") {
		t.Fatalf("curl output %q, want status=429 with Retry-After", out)
	}
	if v, ok := hits.Load("/api/v1/orders"); !ok || v != "Bearer abc" {
		t.Errorf("upstream saw %v %v, want the request with its Authorization", v, ok)
	}
	var found jsonEvent
	for _, e := range p.events() {
		if e["event"] == "http" {
			found = e
		}
	}
	if found == nil {
		t.Fatal("no http event in events.jsonl")
	}
	if st, _ := found["status"].(float64); st != 429 || found["method"] != "GET" {
		t.Errorf("http event %v, want GET with status 429", found)
	}
	if u, _ := found["url"].(string); !strings.Contains(u, "/api/v1/orders") || strings.Contains(u, "s3cret") {
		t.Errorf("http event url %q: want the path with the token redacted", u)
	}
	if _, ok := found["latency_ms"].(float64); !ok {
		t.Errorf("http event %v has no latency_ms", found)
	}
}

// TestIntegrationCurlAbsoluteForm429: curl -x to a plain http:// endpoint
// sends an absolute-form request (GET http://host/path); wstap forwards it,
// curl sees the 429 and events.jsonl logs it.
func TestIntegrationCurlAbsoluteForm429(t *testing.T) {
	t.Parallel()
	curl := caNeedTool(t, "curl")
	var got sync.Map
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store("uri", r.RequestURI)
		got.Store("host", r.Host)
		http.Error(w, "slow down", http.StatusTooManyRequests)
	}))
	t.Cleanup(ts.Close)
	p := startForwardProxy(t)
	out, err := runTool(t, curl, "-sS", "-x", "http://"+p.srv.Addr().String(), "-o", "/dev/null",
		"-w", "status=%{http_code}", ts.URL+"/api/rooms?page=2")
	if err != nil || out != "status=429" {
		t.Fatalf("curl: %q %v, want status=429", out, err)
	}
	if uri, _ := got.Load("uri"); uri != "/api/rooms?page=2" {
		t.Errorf("upstream request target %q, want origin form /api/rooms?page=2", uri)
	}
	if host, _ := got.Load("host"); host != ts.Listener.Addr().String() {
		t.Errorf("upstream Host %q, want %s", host, ts.Listener.Addr())
	}
	var found jsonEvent
	for _, e := range p.events() {
		if e["event"] == "http" {
			found = e
		}
	}
	if st, _ := found["status"].(float64); st != 429 || found["url"] != ts.URL+"/api/rooms?page=2" {
		t.Errorf("http event %v, want status 429 and the URL", found)
	}
}

// writeCAPEM exports the CA as PEM (for curl --cacert) into a temp file.
func writeCAPEM(t testing.TB, ca *CA) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wstap-ca.pem")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.ExportPEM(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// runTool runs an outside program with a timeout and returns its output.
func runTool(t testing.TB, path string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	return string(out), err
}
