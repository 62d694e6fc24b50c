package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/wstap/wstap/internal/testkit"
)

// caNeedTool is testkit.NeedTool: the path of an outside program, the test
// skipped when it is absent (failed under WSTAP_TEST_STRICT=1).
func caNeedTool(t *testing.T, name string) string {
	t.Helper()
	return testkit.NeedTool(t, name)
}

func caNew(t *testing.T) *CA {
	t.Helper()
	ca, err := LoadOrCreateCA(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// caLeaf is a new CA and its leaf certificate for 127.0.0.1: what a test
// upstream serves, with the CA for wstap to trust.
func caLeaf(t *testing.T) (*CA, *tls.Certificate) {
	t.Helper()
	ca := caNew(t)
	leaf, err := ca.Leaf("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return ca, leaf
}

func TestCADefaultDir(t *testing.T) {
	t.Setenv("WSTAP_CA_DIR", "/somewhere/ca")
	if got := DefaultCADir(); got != "/somewhere/ca" {
		t.Errorf("DefaultCADir with WSTAP_CA_DIR = %q, want /somewhere/ca", got)
	}
	t.Setenv("WSTAP_CA_DIR", "")
	t.Setenv("XDG_CONFIG_HOME", "/cfg")
	if got, want := DefaultCADir(), filepath.Join("/cfg", "wstap", "ca"); got != want {
		t.Errorf("DefaultCADir = %q, want %q", got, want)
	}
}

func TestCACreateThenLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "ca")
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Created {
		t.Error("first LoadOrCreateCA: Created = false")
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, ca.KeyPath(): 0o600, ca.CertPath(): 0o644} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode %04o, want %04o", path, got, want)
		}
	}
	c := ca.Cert
	if c.Subject.CommonName != "wstap local CA" || !c.IsCA || c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("CA cert CN %q IsCA %v KeyUsage %v", c.Subject.CommonName, c.IsCA, c.KeyUsage)
	}
	if c.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("CA key algorithm %v, want ECDSA", c.PublicKeyAlgorithm)
	}
	if age := time.Since(c.NotBefore); age < 59*time.Minute || age > 61*time.Minute {
		t.Errorf("CA NotBefore is %v ago, want 1h (backdated)", age)
	}
	if life := c.NotAfter.Sub(c.NotBefore); life != 10*365*24*time.Hour {
		t.Errorf("CA lifetime %v, want 10 years", life)
	}
	pemFile, err := os.ReadFile(ca.CertPath())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pemFile, ca.CertPEM) {
		t.Error("CertPEM differs from ca.pem")
	}

	again, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.Created {
		t.Error("second LoadOrCreateCA: Created = true, want the existing CA loaded")
	}
	if !bytes.Equal(again.Cert.Raw, ca.Cert.Raw) || again.Fingerprint() != ca.Fingerprint() {
		t.Error("second LoadOrCreateCA returned a different certificate")
	}
	// A leaf from the reloaded CA verifies against the first one's pool: same key.
	leaf, err := again.Leaf("example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: ca.Pool()}); err != nil {
		t.Errorf("leaf of reloaded CA: %v", err)
	}
}

func TestCARefusesReadableKey(t *testing.T) {
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
		ca := caNew(t)
		if err := os.Chmod(ca.KeyPath(), mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreateCA(ca.Dir)
		if err == nil {
			t.Fatalf("key mode %04o: loaded, want refusal", mode)
		}
		if want := "chmod 600 " + ca.KeyPath(); !strings.Contains(err.Error(), want) {
			t.Errorf("key mode %04o: error %q does not say %q", mode, err, want)
		}
	}
}

func TestCAHalfPresent(t *testing.T) {
	for _, remove := range []string{CAKeyFile, CACertFile} {
		ca := caNew(t)
		if err := os.Remove(filepath.Join(ca.Dir, remove)); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreateCA(ca.Dir)
		if err == nil || !strings.Contains(err.Error(), remove) {
			t.Errorf("with %s removed: error %v, want one naming %s", remove, err, remove)
		}
	}
}

func TestCALeafVerifies(t *testing.T) {
	ca := caNew(t)
	for _, host := range []string{"chat.example.com", "127.0.0.1", "10.1.2.3", "::1", "localhost"} {
		leaf, err := ca.Leaf(host)
		if err != nil {
			t.Fatal(err)
		}
		if len(leaf.Certificate) != 2 || !bytes.Equal(leaf.Certificate[1], ca.Cert.Raw) {
			t.Errorf("%s: chain has %d certificates, want leaf then CA", host, len(leaf.Certificate))
		}
		l := leaf.Leaf
		if l.PublicKeyAlgorithm != x509.ECDSA {
			t.Errorf("%s: key algorithm %v, want ECDSA", host, l.PublicKeyAlgorithm)
		}
		if life := l.NotAfter.Sub(l.NotBefore); life != 397*24*time.Hour {
			t.Errorf("%s: lifetime %v, want 397 days", host, life)
		}
		if age := time.Since(l.NotBefore); age < 59*time.Minute || age > 61*time.Minute {
			t.Errorf("%s: NotBefore is %v ago, want 1h (backdated)", host, age)
		}
		for _, name := range []string{host, "localhost", "127.0.0.1", "::1"} {
			opts := x509.VerifyOptions{DNSName: name, Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
			if _, err := l.Verify(opts); err != nil {
				t.Errorf("leaf for %s does not verify as %s: %v", host, name, err)
			}
		}
		if _, err := l.Verify(x509.VerifyOptions{DNSName: "other.example.com", Roots: ca.Pool()}); err == nil {
			t.Errorf("leaf for %s verifies for other.example.com", host)
		}
	}
	if got := ca.Minted(); got != 5 {
		t.Errorf("Minted = %d, want 5", got)
	}
}

func TestCALeafHostNormalized(t *testing.T) {
	ca := caNew(t)
	a, err := ca.Leaf("chat.example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"Chat.Example.COM.", "chat.example.com:443"} {
		b, err := ca.Leaf(h)
		if err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Errorf("Leaf(%q) minted a new leaf, want the cached one of chat.example.com", h)
		}
	}
	if _, err := ca.Leaf("[::1]"); err != nil {
		t.Errorf("Leaf([::1]): %v", err)
	}
	if _, err := ca.Leaf(""); err == nil {
		t.Error("Leaf(\"\") succeeded, want an error")
	}
	if got := ca.Minted(); got != 2 {
		t.Errorf("Minted = %d, want 2", got)
	}
}

func TestCALeafConcurrentMintsOnce(t *testing.T) {
	ca := caNew(t)
	const callers = 1000
	var wg sync.WaitGroup
	start := make(chan struct{})
	certs := make([]*tls.Certificate, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			certs[i], errs[i] = ca.Leaf("chat.example.com")
		}()
	}
	close(start)
	wg.Wait()
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if certs[i] != certs[0] {
			t.Fatalf("call %d got a different leaf", i)
		}
	}
	if got := ca.Minted(); got != 1 {
		t.Errorf("%d concurrent Leaf calls minted %d leaves, want 1", callers, got)
	}
}

func TestCALeafRenewedNearExpiry(t *testing.T) {
	ca := caNew(t)
	first, err := ca.Leaf("chat.example.com")
	if err != nil {
		t.Fatal(err)
	}
	// 25 hours before expiry the cached leaf is still served...
	ca.now = func() time.Time { return first.Leaf.NotAfter.Add(-25 * time.Hour) }
	if again, _ := ca.Leaf("chat.example.com"); again != first || ca.Minted() != 1 {
		t.Fatalf("25h before expiry: minted %d, want the cached leaf", ca.Minted())
	}
	// ...23 hours before expiry a new one is minted.
	ca.now = func() time.Time { return first.Leaf.NotAfter.Add(-23 * time.Hour) }
	renewed, err := ca.Leaf("chat.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if renewed == first || ca.Minted() != 2 {
		t.Fatalf("23h before expiry: minted %d, want a renewed leaf", ca.Minted())
	}
	if !renewed.Leaf.NotAfter.After(first.Leaf.NotAfter) {
		t.Errorf("renewed leaf expires %v, not after the old one's %v", renewed.Leaf.NotAfter, first.Leaf.NotAfter)
	}
}

// TestCAGetCertificate runs real TLS handshakes: with SNI the leaf is for the
// SNI name; without SNI (an IP address) it is for the fallback host.
func TestCAGetCertificate(t *testing.T) {
	ca := caNew(t)
	cases := []struct {
		serverName, fallback, wantCN string
	}{
		{"chat.example.com", "connect.example.com", "chat.example.com"},
		{"", "connect.example.com", "connect.example.com"},
		{"", "", "localhost"},
	}
	for _, tc := range cases {
		server, client := net.Pipe()
		srv := tls.Server(server, &tls.Config{GetCertificate: ca.GetCertificate(tc.fallback)})
		served := make(chan struct{})
		go func() {
			defer close(served)
			// Read until the client's close_notify: net.Pipe is unbuffered, so
			// a server-side Close would block writing its own alert.
			io.Copy(io.Discard, srv)
			server.Close()
		}()
		cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: tc.serverName}
		if tc.serverName == "" {
			// Go sends no SNI for an IP address; the leaf still carries 127.0.0.1.
			cfg.ServerName = "127.0.0.1"
		}
		cl := tls.Client(client, cfg)
		if err := cl.Handshake(); err != nil {
			t.Fatalf("SNI %q fallback %q: handshake: %v", tc.serverName, tc.fallback, err)
		}
		if got := cl.ConnectionState().PeerCertificates[0].Subject.CommonName; got != tc.wantCN {
			t.Errorf("SNI %q fallback %q: served leaf for %q, want %q", tc.serverName, tc.fallback, got, tc.wantCN)
		}
		cl.Close()
		<-served
	}
}

func TestCAExportPEM(t *testing.T) {
	ca := caNew(t)
	var buf bytes.Buffer
	if err := ca.ExportPEM(&buf); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(buf.Bytes()) {
		t.Fatal("exported PEM holds no certificate")
	}
	leaf, _ := ca.Leaf("example.com")
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: pool}); err != nil {
		t.Errorf("leaf does not verify against the exported PEM: %v", err)
	}
}

func TestCAExportP12RoundTrip(t *testing.T) {
	ca := caNew(t)
	var buf bytes.Buffer
	if err := ca.ExportP12(&buf, "changeit"); err != nil {
		t.Fatal(err)
	}
	certs, err := pkcs12.DecodeTrustStore(buf.Bytes(), "changeit")
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 1 || !certs[0].Equal(ca.Cert) {
		t.Fatalf("trust store holds %d certificates, want the CA alone", len(certs))
	}
	if _, err := pkcs12.DecodeTrustStore(buf.Bytes(), "wrong"); err == nil {
		t.Error("trust store opened with a wrong password")
	}
}

func TestCAExportP12Keytool(t *testing.T) {
	keytool := caNeedTool(t, "keytool")
	ca := caNew(t)
	p12 := caWriteP12(t, ca)
	out, err := exec.Command(keytool, "-list", "-v", "-storetype", "PKCS12", "-keystore", p12, "-storepass", "changeit").CombinedOutput()
	if err != nil {
		t.Fatalf("keytool -list: %v\n%s", err, out)
	}
	for _, want := range []string{"Alias name: wstap", "trustedCertEntry", "CN=wstap local CA", ca.Fingerprint()} {
		if !strings.Contains(string(out), want) {
			t.Errorf("keytool -list output lacks %q:\n%s", want, out)
		}
	}
}

func caWriteP12(t *testing.T, ca *CA) string {
	t.Helper()
	p12 := filepath.Join(t.TempDir(), "wstap-ca.p12")
	f, err := os.Create(p12)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.ExportP12(f, "changeit"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p12
}

// caEchoServer serves a gorilla/websocket echo, over TLS with a leaf from ca
// unless ca is nil.
func caEchoServer(t *testing.T, ca *CA) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(testkit.EchoHandler())
	t.Cleanup(srv.Close)
	if ca == nil {
		srv.Start()
		return srv
	}
	srv.TLS = &tls.Config{GetCertificate: ca.GetCertificate("localhost")}
	// The untrusted client's failed handshake is expected; keep it out of the test output.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	return srv
}

// caJavaClient returns the java arguments that start testdata/java/WsClient.java:
// compiled once with javac when it is there (each single-file launch compiles
// the source again, seconds of CPU), else the single-file source launch.
func caJavaClient(t *testing.T) []string {
	t.Helper()
	src := filepath.Join("..", "testdata", "java", "WsClient.java")
	javac, err := exec.LookPath("javac")
	if err != nil {
		return []string{src}
	}
	classes := t.TempDir()
	if out, err := exec.Command(javac, "-d", classes, src).CombinedOutput(); err != nil {
		t.Fatalf("javac %s: %v\n%s", src, err, out)
	}
	return []string{"-cp", classes, "WsClient"}
}

// caRunJava runs the Java client and returns its last line and its whole output.
func caRunJava(t *testing.T, java string, client, jvmArgs []string, clientArgs ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append(append(append([]string{}, jvmArgs...), client...), clientArgs...)
	out, _ := exec.CommandContext(ctx, java, args...).CombinedOutput()
	t.Logf("java %s\n%s", strings.Join(args, " "), out)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], string(out)
}

// TestCAJavaClient runs the JDK's own WebSocket client against a wss echo
// server whose leaf comes from the CA: it succeeds with the exported p12 trust
// store, directly and through a CONNECT proxy, and fails its TLS handshake
// without. Through the proxy, ws:// to localhost is tunnelled with CONNECT too.
func TestCAJavaClient(t *testing.T) {
	java := caNeedTool(t, "java")
	ca := caNew(t)
	p12 := caWriteP12(t, ca)
	srv := caEchoServer(t, ca)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	url := "wss://localhost:" + port + "/"
	plain := caEchoServer(t, nil)
	_, plainPort, _ := net.SplitHostPort(plain.Listener.Addr().String())
	trust := []string{"-Djavax.net.ssl.trustStore=" + p12, "-Djavax.net.ssl.trustStorePassword=changeit"}
	proxyAddr, tunnels := testkit.ConnectProxy(t)
	plainProxyAddr, plainTunnels := testkit.ConnectProxy(t)
	client := caJavaClient(t)

	t.Run("trusted", func(t *testing.T) {
		t.Parallel()
		last, out := caRunJava(t, java, client, trust, url, "--pings", "3", "--messages", "3")
		if last != "RESULT ok pongs=3 echoes=3 close=1000" {
			t.Errorf("last line %q, want RESULT ok pongs=3 echoes=3 close=1000\n%s", last, out)
		}
	})
	t.Run("trusted-via-proxy", func(t *testing.T) {
		t.Parallel()
		last, out := caRunJava(t, java, client, trust, url, "--proxy", proxyAddr, "--pings", "2", "--messages", "2")
		if last != "RESULT ok pongs=2 echoes=2 close=1000" {
			t.Errorf("last line %q, want RESULT ok pongs=2 echoes=2 close=1000\n%s", last, out)
		}
		if n := tunnels(); n != 1 {
			t.Errorf("the proxy saw %d CONNECT tunnels, want 1 (localhost must not bypass --proxy)", n)
		}
	})
	t.Run("plain-via-proxy", func(t *testing.T) {
		t.Parallel()
		last, out := caRunJava(t, java, client, nil, "ws://localhost:"+plainPort+"/", "--proxy", plainProxyAddr, "--pings", "1", "--messages", "1")
		if last != "RESULT ok pongs=1 echoes=1 close=1000" {
			t.Errorf("last line %q, want RESULT ok pongs=1 echoes=1 close=1000\n%s", last, out)
		}
		if n := plainTunnels(); n != 1 {
			t.Errorf("the proxy saw %d CONNECT tunnels for ws://, want 1", n)
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		t.Parallel()
		last, out := caRunJava(t, java, client, nil, url, "--pings", "1", "--messages", "1")
		if !strings.HasPrefix(last, "RESULT fail javax.net.ssl.SSLHandshakeException") {
			t.Errorf("last line %q, want RESULT fail javax.net.ssl.SSLHandshakeException...\n%s", last, out)
		}
	})
}
