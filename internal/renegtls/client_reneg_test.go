package renegtls

import (
	"crypto/tls"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	gotls "github.com/wstap/wstap/internal/renegtls/gotls"
	"github.com/wstap/wstap/internal/testkit"
)

// TestClientInitiatedRenegotiationRefused: `openssl s_client` renegotiates
// ("R" on its stdin) with a Go TLS 1.2 server. crypto/tls's server (wstap's
// client leg) ends the connection with a fatal unexpected_message alert,
// since it reads a ClientHello where only a client could expect a
// HelloRequest; the patched copy's server does the same, as the patch only
// changes what a client does after a HelloRequest.
func TestClientInitiatedRenegotiationRefused(t *testing.T) {
	openssl := testkit.NeedTool(t, "openssl")
	dir := t.TempDir()
	certFile, keyFile, _ := testCert(t, dir)
	servers := map[string]func(net.Conn) net.Conn{
		"crypto/tls": func(c net.Conn) net.Conn {
			cert, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				t.Error(err)
			}
			return tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		},
		"gotls": func(c net.Conn) net.Conn {
			cert, err := gotls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				t.Error(err)
			}
			return gotls.Server(c, &gotls.Config{Certificates: []gotls.Certificate{cert}})
		},
	}
	for name, server := range servers {
		t.Run(name, func(t *testing.T) {
			msgs, readErr := clientRenegotiates(t, openssl, certFile, server)
			if readErr == nil || !strings.Contains(readErr.Error(), "unexpected handshake message of type *tls.clientHelloMsg") {
				t.Errorf("server read error %v, want the unexpected ClientHello", readErr)
			}
			if !strings.Contains(msgs, "RENEGOTIATING") || !strings.Contains(msgs, "Alert [length 0002], fatal unexpected_message") {
				t.Errorf("s_client -msg did not renegotiate and receive a fatal unexpected_message alert:\n%s", msgs)
			}
		})
	}
}

// clientRenegotiates runs s_client against server, has it send a line and
// then renegotiate, and returns what s_client -msg printed and the server's
// first read error.
func clientRenegotiates(t *testing.T, openssl, caFile string, server func(net.Conn) net.Conn) (msgs string, readErr error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		sc := server(c)
		defer sc.Close()
		_, err = io.Copy(io.Discard, sc)
		errc <- err
	}()
	out := &testkit.SyncBuffer{}
	cmd := exec.Command(openssl, "s_client", "-connect", ln.Addr().String(), "-tls1_2", "-CAfile", caFile, "-msg")
	cmd.Stdout, cmd.Stderr = out, out
	stdin, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting openssl s_client: %v", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "Verify return code"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("s_client did not complete its handshake:\n%s", out)
		}
	}
	io.WriteString(stdin, "hello\n")
	time.Sleep(100 * time.Millisecond)
	io.WriteString(stdin, "R\n")
	select {
	case err := <-errc:
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !strings.Contains(out.String(), "Alert"); {
			time.Sleep(10 * time.Millisecond)
		}
		return out.String(), err
	case <-time.After(10 * time.Second):
		t.Fatalf("the server did not end the connection 10 s after the client renegotiated:\n%s", out)
	}
	return "", nil
}
