package proxy

import (
	"bufio"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wstap/wstap/capture/record"
)

// rfcKey and rfcAccept are the example of RFC 6455 §1.3.
const (
	rfcKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	rfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// TestUpstreamRenegotiationRecorded: a TLS 1.2 upstream (openssl s_server)
// answers the upgrade and then asks for a renegotiation; wstap accepts it as
// a client would and records it on the upstream leg.
func TestUpstreamRenegotiationRecorded(t *testing.T) {
	openssl := caNeedTool(t, "openssl")
	certFile, keyFile, _, pool := upstreamCert(t)

	// s_server prints ACCEPT once it listens (probing the port would use up
	// the connection it serves); a port taken meanwhile is tried again.
	var (
		srv    *exec.Cmd
		stdin  io.WriteCloser
		stdout io.ReadCloser
		sc     *bufio.Scanner
		errOut strings.Builder
		port   int
	)
	for try := 0; try < 5 && srv == nil; try++ {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		cmd := exec.Command(openssl, "s_server", "-tls1_2", "-accept", fmt.Sprintf("127.0.0.1:%d", port), "-cert", certFile, "-key", keyFile)
		stdin, _ = cmd.StdinPipe()
		stdout, _ = cmd.StdoutPipe()
		errOut.Reset()
		cmd.Stderr = &errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc = bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ACCEPT" {
				srv = cmd
				break
			}
		}
		if srv == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}
	if srv == nil {
		t.Fatalf("openssl s_server did not start: %s", errOut.String())
	}
	defer srv.Process.Kill()

	p := startTestProxy(t, fmt.Sprintf("wss://127.0.0.1:%d", port), false, pool)
	c, err := net.Dial("tcp", p.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", rfcKey)
	// s_server prints what it receives; wait for the request, then answer.
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "Sec-WebSocket-Version") {
	}
	go io.Copy(io.Discard, stdout)
	// s_server sends each stdin line; a line "R" asks for a renegotiation.
	fmt.Fprintf(stdin, "HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Accept: %s\n\n", rfcAccept)
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := br.ReadString('\n'); err != nil || !strings.Contains(line, "101") {
		rest, _ := io.ReadAll(io.LimitReader(br, 2000))
		t.Fatalf("client got %q %v, want the 101\n%s\ns_server: %s", line, err, rest, errOut.String())
	}
	time.Sleep(200 * time.Millisecond)
	// The renegotiation (s_server takes a read of "R\n" alone as the
	// command), frames right behind it, and one after it: "ab" and "hi".
	fmt.Fprintf(stdin, "R\n")
	for range 2 {
		time.Sleep(5 * time.Millisecond)
		fmt.Fprintf(stdin, "\x81\x02ab\n")
	}
	time.Sleep(500 * time.Millisecond)
	fmt.Fprintf(stdin, "\x81\x02hi\n")
	deadline := time.Now().Add(5 * time.Second)
	var got strings.Builder
	for !strings.Contains(got.String(), "hi") && time.Now().Before(deadline) {
		b := make([]byte, 64)
		n, _ := br.Read(b)
		got.Write(b[:n])
	}
	c.Close()
	srv.Process.Kill()
	p.waitRecords(1)
	recs := p.records()
	r := recs[0]
	if r.TLS.Upstream == nil || r.TLS.Upstream.Renegotiations != 1 || r.TLS.Upstream.Version != "TLS 1.2" {
		t.Fatalf("upstream TLS %+v, want TLS 1.2 with one renegotiation recorded", r.TLS.Upstream)
	}
	if g := got.String(); strings.Count(g, "ab") != 2 || !strings.Contains(g, "hi") || strings.Index(g, "ab") > strings.Index(g, "hi") {
		t.Errorf("the client got %q, want the frames sent during the renegotiation and after it, in order", g)
	}
	evs := renegEvents(t, p.dir)
	if len(evs) != 1 || evs[0].Leg != "upstream" || evs[0].Initiator != "upstream" || evs[0].Outcome != "accepted" {
		t.Errorf("tls-renegotiation events %+v, want one: upstream, accepted", evs)
	}
}

// TestClientRenegotiationRefused: a TLS 1.2 client (openssl s_client) asks
// wstap for a renegotiation; Go's server refuses it and the record says so.
func TestClientRenegotiationRefused(t *testing.T) {
	openssl := caNeedTool(t, "openssl")
	upURL, _ := wsServer(t, false, echo)
	p := startTestProxy(t, upURL, true, nil)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	f, _ := os.Create(caFile)
	p.ca.ExportPEM(f)
	f.Close()
	cl := exec.Command(openssl, "s_client", "-tls1_2", "-connect", p.srv.Addr().String(), "-CAfile", caFile, "-crlf")
	stdin, _ := cl.StdinPipe()
	cl.Stdout, cl.Stderr = io.Discard, io.Discard
	if err := cl.Start(); err != nil {
		t.Fatal(err)
	}
	defer cl.Process.Kill()
	fmt.Fprintf(stdin, "GET /chat HTTP/1.1\nHost: x\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Key: %s\nSec-WebSocket-Version: 13\n\n", rfcKey)
	time.Sleep(700 * time.Millisecond)
	fmt.Fprintf(stdin, "R\n")
	done := make(chan struct{})
	go func() { cl.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cl.Process.Kill()
	}
	p.waitRecords(1)
	r := p.records()[0]
	if r.TLS.Client == nil || r.TLS.Client.Renegotiations != 1 {
		t.Fatalf("client TLS %+v, want one renegotiation recorded", r.TLS.Client)
	}
	if r.End.First != record.SideClient || r.End.How != record.HowTLSError || r.Verdict != record.VerdictAbnormalClient {
		t.Errorf("verdict %s end %+v, want the client's TLS error (abnormal-client-drop)", r.Verdict, r.End)
	}
	// Go's TLS server answers the new ClientHello with a fatal
	// unexpected_message alert (crypto/tls handleRenegotiation).
	evs := renegEvents(t, p.dir)
	if len(evs) != 1 || evs[0].Leg != "client" || evs[0].Initiator != "client" || evs[0].Outcome != "refused" ||
		!strings.Contains(evs[0].Alert, "unexpected message") {
		t.Errorf("tls-renegotiation events %+v, want one: client, refused with unexpected_message", evs)
	}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
