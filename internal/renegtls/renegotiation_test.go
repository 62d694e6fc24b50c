package renegtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// tlsClient is what the tests need of *tls.Conn and *Conn alike.
type tlsClient interface {
	net.Conn
	Handshake() error
}

// stdlibClient dials with crypto/tls as it is, renegotiation allowed.
func stdlibClient(pool *x509.CertPool) func(net.Conn) (tlsClient, error) {
	return func(c net.Conn) (tlsClient, error) {
		return tls.Client(c, upstreamConfig(pool)), nil
	}
}

// patchedClient dials with this package and records each renegotiation.
func patchedClient(pool *x509.CertPool, got *[]Renegotiation, mu *sync.Mutex) func(net.Conn) (tlsClient, error) {
	return func(c net.Conn) (tlsClient, error) {
		return Client(c, upstreamConfig(pool), Options{OnRenegotiation: func(r Renegotiation) {
			mu.Lock()
			*got = append(*got, r)
			mu.Unlock()
		}})
	}
}

// upstreamConfig is the config wstap's upstream leg uses, minus the cache.
func upstreamConfig(pool *x509.CertPool) *tls.Config {
	return &tls.Config{ServerName: "localhost", RootCAs: pool, NextProtos: []string{"http/1.1"},
		Renegotiation: tls.RenegotiateFreelyAsClient}
}

// traffic is what a client read while s_server renegotiated under traffic.
type traffic struct {
	sent, got string
	err       error // the client's read error, nil when it read everything
}

// renegotiateUnderTraffic connects a client to s, has s_server send 10
// lines, renegotiate, send `after` lines more and run end (when not nil),
// and returns what the client read. The client's writes are delayed by
// 300 ms from the renegotiation on (latencyConn), so the lines s_server
// sends before it reads the new ClientHello arrive during the new handshake.
func renegotiateUnderTraffic(t *testing.T, s *sServer, dial func(net.Conn) (tlsClient, error), after int, end func()) traffic {
	t.Helper()
	raw, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	lc := &latencyConn{Conn: raw}
	c, err := dial(lc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Handshake(); err != nil {
		t.Fatalf("handshake with openssl s_server: %v", err)
	}
	var mu sync.Mutex
	var tr traffic
	var got strings.Builder
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			mu.Lock()
			got.Write(buf[:n])
			tr.err = err
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	for i := range 10 + after {
		if i == 10 {
			lc.delay.Store(int64(300 * time.Millisecond))
			s.send(t, "r\n", 30*time.Millisecond)
		}
		line := fmt.Sprintf("line %03d of the stream\n", i)
		s.send(t, line, 5*time.Millisecond)
		tr.sent += line
	}
	if end != nil {
		end()
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		complete := got.Len() >= len(tr.sent) || tr.err != nil
		mu.Unlock()
		if complete {
			break
		}
	}
	c.Close()
	<-done
	mu.Lock()
	defer mu.Unlock()
	tr.got = got.String()
	if tr.got == tr.sent && end == nil {
		tr.err = nil // the error of the Close above
	}
	return tr
}

// TestStdlibFailsOnDataDuringRenegotiation shows the failure this package
// exists for: crypto/tls ends the connection with unexpected_message when
// openssl s_server sends application data during its renegotiation. If a
// Go release fixes this, the test fails, and the patch can go.
func TestStdlibFailsOnDataDuringRenegotiation(t *testing.T) {
	s := startSServer(t, "-tls1_2")
	tr := renegotiateUnderTraffic(t, s, stdlibClient(s.pool), 30, nil)
	if tr.err == nil {
		t.Fatalf("crypto/tls read all %d bytes through a renegotiation under traffic; the patch may no longer be needed", len(tr.sent))
	}
	if !strings.Contains(tr.err.Error(), "unexpected message") {
		t.Fatalf("crypto/tls failed with %v, want local error: tls: unexpected message", tr.err)
	}
	if !strings.HasPrefix(tr.sent, tr.got) {
		t.Fatalf("crypto/tls read bytes that were not sent: %q", tr.got)
	}
	t.Logf("crypto/tls: %v after %d of %d bytes", tr.err, len(tr.got), len(tr.sent))
}

// TestPatchedReadsDataDuringRenegotiation: the same server and traffic, and
// this package's client reads every byte in order, with one accepted
// renegotiation that held the data sent during it.
func TestPatchedReadsDataDuringRenegotiation(t *testing.T) {
	s := startSServer(t, "-tls1_2")
	var mu sync.Mutex
	var renegs []Renegotiation
	tr := renegotiateUnderTraffic(t, s, patchedClient(s.pool, &renegs, &mu), 30, nil)
	if tr.err != nil || tr.got != tr.sent {
		t.Fatalf("read %d of %d bytes, error %v; got %q", len(tr.got), len(tr.sent), tr.err, tr.got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(renegs) != 1 {
		t.Fatalf("renegotiations reported: %+v, want 1", renegs)
	}
	r := renegs[0]
	if r.Outcome != Accepted || r.Err != nil || r.Alert != "" {
		t.Fatalf("renegotiation %+v, want accepted without error or alert", r)
	}
	if r.HeldRecords == 0 {
		t.Fatalf("no application data arrived during the renegotiation (%+v): the test did not exercise the patch", r)
	}
	if r.Duration < 250*time.Millisecond || r.Duration > 5*time.Second {
		t.Fatalf("renegotiation took %v, want the 300 ms write latency plus a handshake", r.Duration)
	}
	t.Logf("renegotiation %s in %v, %d records (%d bytes) held", r.Outcome, r.Duration, r.HeldRecords, r.HeldBytes)
}

// TestPatchedRefusesWhenConfigured: with Renegotiation RenegotiateNever the
// client answers the HelloRequest with no_renegotiation, as crypto/tls does,
// and reports it refused.
func TestPatchedRefusesWhenConfigured(t *testing.T) {
	s := startSServer(t, "-tls1_2")
	var mu sync.Mutex
	var renegs []Renegotiation
	dial := func(c net.Conn) (tlsClient, error) {
		cfg := upstreamConfig(s.pool)
		cfg.Renegotiation = tls.RenegotiateNever
		return Client(c, cfg, Options{OnRenegotiation: func(r Renegotiation) {
			mu.Lock()
			renegs = append(renegs, r)
			mu.Unlock()
		}})
	}
	tr := renegotiateUnderTraffic(t, s, dial, 30, nil)
	if tr.err == nil || !strings.Contains(tr.err.Error(), "no renegotiation") {
		t.Fatalf("read error %v, want local error: tls: no renegotiation", tr.err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(renegs) != 1 || renegs[0].Outcome != Refused || renegs[0].Alert != "local error: tls: no renegotiation" {
		t.Fatalf("renegotiations reported: %+v, want 1 refused with no_renegotiation", renegs)
	}
	var op *net.OpError
	if !errors.As(renegs[0].Err, &op) {
		t.Fatalf("refusal error %T, want *net.OpError", renegs[0].Err)
	}
}

// TestPatchedServerGoneDuringRenegotiation: s_server sends 5 lines after
// its HelloRequest and dies before it reads the new ClientHello. The client
// reads all 15 lines, then the error, and reports the renegotiation failed.
func TestPatchedServerGoneDuringRenegotiation(t *testing.T) {
	s := startSServer(t, "-tls1_2")
	var mu sync.Mutex
	var renegs []Renegotiation
	kill := func() {
		time.Sleep(50 * time.Millisecond)
		s.cmd.Process.Kill()
	}
	tr := renegotiateUnderTraffic(t, s, patchedClient(s.pool, &renegs, &mu), 5, kill)
	if tr.got != tr.sent {
		t.Fatalf("read %q before %v, want the %d bytes sent", tr.got, tr.err, len(tr.sent))
	}
	if tr.err == nil {
		t.Fatalf("no error after the server died")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(renegs) != 1 || renegs[0].Outcome != Failed || renegs[0].Err == nil || renegs[0].HeldRecords != 5 {
		t.Fatalf("renegotiations reported: %+v, want 1 failed that held 5 records", renegs)
	}
	t.Logf("read error %v; renegotiation %s after %v: %v (alert %q)", tr.err, renegs[0].Outcome, renegs[0].Duration, renegs[0].Err, renegs[0].Alert)
}
