package renegtls

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// TestSameClientHello: for the configs wstap uses, this package's client
// sends the ClientHello crypto/tls sends, byte for byte apart from the random
// values (client random, legacy session ID, key shares), so an upstream sees
// no difference and picks the same version, TLS 1.3 included. (With a
// session cache, Options.SessionCache stands for tls.Config's.)
func TestSameClientHello(t *testing.T) {
	configs := map[string]func(*tls.Config){
		"default":          func(*tls.Config) {},
		"proxy curves":     func(c *tls.Config) { c.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256} },
		"TLS 1.2 only":     func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 },
		"renegotiate once": func(c *tls.Config) { c.Renegotiation = tls.RenegotiateOnceAsClient },
		"session cache":    func(c *tls.Config) { c.ClientSessionCache = tls.NewLRUClientSessionCache(8) },
	}
	for name, edit := range configs {
		t.Run(name, func(t *testing.T) {
			cfg := upstreamConfig(nil)
			edit(cfg)
			std := clientHello(t, func(c net.Conn) (tlsClient, error) { return tls.Client(c, cfg), nil })
			fork := clientHello(t, func(c net.Conn) (tlsClient, error) {
				if cfg.ClientSessionCache == nil {
					return Client(c, cfg, Options{})
				}
				noCache := cfg.Clone()
				noCache.ClientSessionCache = nil
				return Client(c, noCache, Options{SessionCache: NewSessionCache(8)})
			})
			if std != fork {
				t.Fatalf("ClientHello differs:\ncrypto/tls: %s\nrenegtls:   %s", std, fork)
			}
		})
	}
}

// clientHello returns the first ClientHello a client sends, its random values
// zeroed, as hex with one line per extension.
func clientHello(t *testing.T, dial func(net.Conn) (tlsClient, error)) string {
	t.Helper()
	a, b := net.Pipe()
	defer b.Close()
	c, err := dial(a)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c.Handshake()
		a.Close()
	}()
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(b, hdr); err != nil {
		t.Fatal(err)
	}
	rec := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(b, rec); err != nil {
		t.Fatal(err)
	}
	return maskHello(t, rec)
}

// maskHello parses a ClientHello handshake message (RFC 8446, Section 4.1.2)
// and prints it with the random, the session ID and the key_share values
// zeroed.
func maskHello(t *testing.T, msg []byte) string {
	s := cryptobyte.String(msg)
	var typ uint8
	var body, sid, suites, comp, exts cryptobyte.String
	var vers uint16
	if !s.ReadUint8(&typ) || !s.ReadUint24LengthPrefixed(&body) || !body.ReadUint16(&vers) || !body.Skip(32) ||
		!body.ReadUint8LengthPrefixed(&sid) || !body.ReadUint16LengthPrefixed(&suites) ||
		!body.ReadUint8LengthPrefixed(&comp) || !body.ReadUint16LengthPrefixed(&exts) {
		t.Fatalf("malformed ClientHello %x", msg)
	}
	var out strings.Builder
	fmt.Fprintf(&out, "type %d version %04x session ID %d bytes suites %x compression %x\n", typ, vers, len(sid), []byte(suites), []byte(comp))
	for !exts.Empty() {
		var ext uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&ext) || !exts.ReadUint16LengthPrefixed(&data) {
			t.Fatalf("malformed extensions in %x", msg)
		}
		if ext == 51 { // key_share: group and length of each share
			data = maskKeyShares(t, data)
		}
		fmt.Fprintf(&out, "extension %d: %x\n", ext, []byte(data))
	}
	return out.String()
}

func maskKeyShares(t *testing.T, data cryptobyte.String) cryptobyte.String {
	var shares cryptobyte.String
	if !data.ReadUint16LengthPrefixed(&shares) {
		t.Fatalf("malformed key_share %x", []byte(data))
	}
	var masked []byte
	for !shares.Empty() {
		var group uint16
		var key cryptobyte.String
		if !shares.ReadUint16(&group) || !shares.ReadUint16LengthPrefixed(&key) {
			t.Fatalf("malformed key share")
		}
		masked = fmt.Appendf(masked, "%04x:%d;", group, len(key))
	}
	return masked
}

// TestSuitesWithOpenSSL: against `openssl s_server` this package's client
// negotiates each TLS 1.3 suite and the TLS 1.2 suites wstap offers by
// default, and exchanges data both ways: the TLS 1.3 code of crypto/tls on
// the tls13 and gcm shims, and the TLS 1.2 PRF shim with SHA-256 and SHA-384.
func TestSuitesWithOpenSSL(t *testing.T) {
	suites := []struct{ flag, openssl, name string }{
		{"-tls1_3", "TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"},
		{"-tls1_3", "TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384"},
		{"-tls1_3", "TLS_CHACHA20_POLY1305_SHA256", "TLS_CHACHA20_POLY1305_SHA256"},
		{"-tls1_2", "ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"},
		{"-tls1_2", "ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"},
		{"-tls1_2", "ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"},
		{"-tls1_2", "ECDHE-ECDSA-AES128-SHA", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"},
	}
	for _, suite := range suites {
		t.Run(suite.name, func(t *testing.T) {
			choose := "-cipher"
			if suite.flag == "-tls1_3" {
				choose = "-ciphersuites"
			}
			s := startSServer(t, suite.flag, choose, suite.openssl)
			exchangeLines(t, s, suite.name)
		})
	}
}

// exchangeLines handshakes with s, checks the suite and sends a line each way.
func exchangeLines(t *testing.T, s *sServer, suite string) {
	raw, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Client(raw, upstreamConfig(s.pool), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Handshake(); err != nil {
		t.Fatalf("handshake with openssl: %v\n%s", err, s.out)
	}
	if st := c.ConnectionState(); tls.CipherSuiteName(st.CipherSuite) != suite {
		t.Fatalf("negotiated %s %s, want %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), suite)
	}
	io.WriteString(c, "from the client\n")
	s.send(t, "from the server\n", 0)
	line := make([]byte, len("from the server\n"))
	if _, err := io.ReadFull(c, line); err != nil || string(line) != "from the server\n" {
		t.Fatalf("read %q, %v", line, err)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(s.out.String(), "from the client"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("s_server did not print the client's line:\n%s", s.out)
		}
	}
}
