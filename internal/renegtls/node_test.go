package renegtls

import (
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wstap/wstap/internal/testkit"
)

const (
	nodeLines = 60 // lines per connection, one every nodeEvery
	nodeEvery = 5 * time.Millisecond
	nodeConns = 10
)

// nodeStream is what testdata/renegotiating-server.js sends on a connection.
func nodeStream() string {
	var b strings.Builder
	for i := range nodeLines {
		fmt.Fprintf(&b, "line %03d of the stream\n", i)
	}
	return b.String()
}

// startNodeServer runs testdata/renegotiating-server.js and returns its
// address and a pool trusting its certificate.
func startNodeServer(t *testing.T) (addr string, pool *x509.CertPool, out *testkit.SyncBuffer) {
	t.Helper()
	node := testkit.NeedTool(t, "node")
	certFile, keyFile, pool := testCert(t, t.TempDir())
	out = &testkit.SyncBuffer{}
	cmd := exec.Command(node, "testdata/renegotiating-server.js", certFile, keyFile,
		fmt.Sprint(nodeLines), fmt.Sprint(nodeEvery.Milliseconds()))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting node: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	port := regexp.MustCompile(`listening (\d+)`)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m := port.FindStringSubmatch(out.String()); m != nil {
			return "127.0.0.1:" + m[1], pool, out
		}
		if time.Now().After(deadline) {
			t.Fatalf("node server did not start: %s", out)
		}
	}
}

// readNodeStream connects one client, reads until the server's close_notify
// and returns the error that ended the stream early, nil when all came.
func readNodeStream(addr string, dial func(net.Conn) (tlsClient, error)) error {
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	lc := &latencyConn{Conn: raw}
	c, err := dial(lc)
	if err != nil {
		raw.Close()
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if err := c.Handshake(); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	// Node renegotiates after about 10 lines; from then on the client's
	// packets take 100 ms to arrive, as over a long path.
	lc.delay.Store(int64(100 * time.Millisecond))
	got, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if want := nodeStream(); string(got) != want {
		return fmt.Errorf("read %d bytes, want %d in order: %q", len(got), len(want), got)
	}
	return nil
}

// TestNodeRenegotiationUnderTraffic: a Node TLS 1.2 server renegotiates each
// of 10 connections while it sends; crypto/tls fails on some (all, with the
// added latency), this package's client reads every stream whole.
func TestNodeRenegotiationUnderTraffic(t *testing.T) {
	addr, pool, out := startNodeServer(t)
	var mu sync.Mutex
	var renegs []Renegotiation
	clients := []struct {
		name string
		dial func(net.Conn) (tlsClient, error)
	}{
		{"crypto/tls", stdlibClient(pool)},
		{"renegtls", patchedClient(pool, &renegs, &mu)},
	}
	failed := map[string][]error{}
	for _, cl := range clients {
		errs := make([]error, nodeConns)
		var wg sync.WaitGroup
		for i := range nodeConns {
			wg.Go(func() { errs[i] = readNodeStream(addr, cl.dial) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				failed[cl.name] = append(failed[cl.name], err)
			}
		}
		t.Logf("%s: %d of %d streams failed", cl.name, len(failed[cl.name]), nodeConns)
	}
	if len(failed["crypto/tls"]) == 0 {
		t.Errorf("crypto/tls read all %d streams: the test did not exercise the patch", nodeConns)
	}
	for _, err := range failed["crypto/tls"] {
		if !strings.Contains(err.Error(), "unexpected message") {
			t.Errorf("crypto/tls failed with %v, want unexpected message", err)
		}
	}
	if len(failed["renegtls"]) > 0 {
		t.Errorf("renegtls failed %d streams, first: %v\nnode: %s", len(failed["renegtls"]), failed["renegtls"][0], out)
	}
	mu.Lock()
	defer mu.Unlock()
	held := 0
	for _, r := range renegs {
		if r.Outcome != Accepted {
			t.Errorf("renegotiation %+v, want accepted", r)
		}
		held += r.HeldRecords
	}
	if len(renegs) != nodeConns || held == 0 {
		t.Errorf("%d renegotiations reported holding %d records, want %d holding some", len(renegs), held, nodeConns)
	}
}
