package renegtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wstap/wstap/internal/testkit"
)

// testCert writes a self-signed P-256 certificate for 127.0.0.1 and
// localhost to dir and returns the PEM files and a pool that trusts it.
func testCert(t testing.TB, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", kder)
	return certFile, keyFile, pool
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// sServer is a real `openssl s_server`: what its stdin receives it sends to
// the client, and a line "r" alone makes it renegotiate (HelloRequest).
type sServer struct {
	cmd   *exec.Cmd
	addr  string
	stdin io.WriteCloser
	out   *testkit.SyncBuffer
	pool  *x509.CertPool
}

// startSServer runs openssl s_server with args (a version: -tls1_2) and
// waits until it accepts connections.
func startSServer(t testing.TB, args ...string) *sServer {
	t.Helper()
	openssl := testkit.NeedTool(t, "openssl")
	certFile, keyFile, pool := testCert(t, t.TempDir())
	s := &sServer{addr: testkit.FreeAddr(t), out: &testkit.SyncBuffer{}, pool: pool}
	args = append([]string{"s_server", "-accept", s.addr, "-cert", certFile, "-key", keyFile}, args...)
	cmd := exec.Command(openssl, args...)
	s.cmd = cmd
	cmd.Stdout, cmd.Stderr = s.out, s.out
	var err error
	if s.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting openssl s_server: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(s.out.String(), "ACCEPT"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("openssl s_server did not start: %s", s.out)
		}
	}
	return s
}

// send writes one stdin read's worth to s_server; the pause lets s_server
// read it alone, which a command line such as "r\n" needs.
func (s *sServer) send(t testing.TB, text string, pause time.Duration) {
	t.Helper()
	if _, err := io.WriteString(s.stdin, text); err != nil {
		t.Fatalf("writing to openssl s_server: %v", err)
	}
	time.Sleep(pause)
}

// latencyConn delays each write by delay once armed: a client whose packets
// take that long to reach the server, so that a server which keeps sending
// after its HelloRequest has sent data before it reads the new ClientHello.
type latencyConn struct {
	net.Conn
	delay atomic.Int64
}

func (l *latencyConn) Write(b []byte) (int, error) {
	time.Sleep(time.Duration(l.delay.Load()))
	return l.Conn.Write(b)
}
