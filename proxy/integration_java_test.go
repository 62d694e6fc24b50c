package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wstap/wstap/capture/record"
	"github.com/wstap/wstap/internal/testkit"
)

// Live tests of issue 3 (forward mode in front of a JMeter plan): the JDK's
// own WebSocket client through wstap's CONNECT proxy, and a
// ClientHello without SNI.

// TestIntegrationJavaForward: the JDK's WebSocket client (java.net.http)
// goes through forward mode with the exported p12 trust store to a wss echo
// server: pings, messages and a clean close, recorded completely with the
// TLS version of both legs. Without the trust store the same client fails its
// handshake and wstap records tls-failed-client with the alert Java sent.
func TestIntegrationJavaForward(t *testing.T) {
	t.Parallel()
	java := caNeedTool(t, "java")
	client := caJavaClient(t)

	t.Run("trusted", func(t *testing.T) {
		t.Parallel()
		upURL, pool := wsServer(t, true, echo)
		p := startForwardProxy(t, func(c *Config) { c.UpstreamCAs = pool })
		p12 := caWriteP12(t, p.ca)
		trust := []string{"-Djavax.net.ssl.trustStore=" + p12, "-Djavax.net.ssl.trustStorePassword=changeit"}
		last, out := caRunJava(t, java, client, trust, upURL+"/chat?room=7", "--proxy", p.srv.Addr().String(),
			"--pings", "3", "--messages", "3")
		if last != "RESULT ok pongs=3 echoes=3 close=1000" {
			t.Fatalf("last line %q, want RESULT ok pongs=3 echoes=3 close=1000\n%s", last, out)
		}
		p.waitRecords(1)
		recs := p.records()
		if len(recs) != 1 {
			t.Fatalf("%d records, want 1: %+v", len(recs), recs)
		}
		r := recs[0]
		u, _ := url.Parse(upURL)
		if r.Target != "wss://"+u.Host+"/chat?room=7" || r.Mode != "forward" {
			t.Errorf("target %q mode %q", r.Target, r.Mode)
		}
		if r.Verdict != record.VerdictClean || r.Abnormal || r.End.How != record.HowCloseHandshake || r.End.First != record.SideClient {
			t.Errorf("verdict %s abnormal %v end %+v, want clean, a close handshake begun by the client", r.Verdict, r.Abnormal, r.End)
		}
		if r.ClientCloseCode == nil || *r.ClientCloseCode != 1000 || r.UpstreamCloseCode == nil || *r.UpstreamCloseCode != 1000 {
			t.Errorf("close codes %v %v, want 1000 both ways", r.ClientCloseCode, r.UpstreamCloseCode)
		}
		if c := r.Close.Client; c == nil || c.Code != 1000 || c.Reason != "bye" {
			t.Errorf("client close frame %+v, want 1000 \"bye\"", c)
		}
		if r.Handshake.Status != 101 || len(r.Handshake.RequestHeaders) == 0 || len(r.Handshake.ResponseHeaders) == 0 {
			t.Errorf("handshake %+v", r.Handshake)
		}
		cu, uc := r.Frames.ClientToUpstream, r.Frames.UpstreamToClient
		if cu.Ping != 3 || uc.Pong != 3 || cu.Text != 3 || uc.Text != 3 || cu.Close != 1 || uc.Close != 1 {
			t.Errorf("frames %+v", r.Frames)
		}
		// 3 pings with 8-byte payloads, 3 texts of 15 bytes, a close 1000 "bye":
		// every client frame has a 2-byte header and a 4-byte masking key.
		if want := int64(3*(6+8) + 3*(6+15) + (6 + 5)); cu.Bytes != want {
			t.Errorf("client→upstream bytes %d, want %d", cu.Bytes, want)
		}
		k := r.Keepalive
		if k.ClientPings != 3 || k.UnansweredPings != 0 || k.UpstreamPongRTTMS == nil || k.ClientPingIntervalMS == nil {
			t.Errorf("keepalive %+v", k)
		}
		for leg, l := range map[string]*record.TLSLeg{"client": r.TLS.Client, "upstream": r.TLS.Upstream} {
			if l == nil || !strings.HasPrefix(l.Version, "TLS 1.") || l.Cipher == "" || l.Error != "" {
				t.Errorf("TLS %s leg %+v, want a version and a cipher", leg, l)
			}
		}
		// Java sends no SNI for an IP address: the leaf is the CONNECT host's.
		if r.TLS.Client != nil && r.TLS.Client.SNI != "" && r.TLS.Client.SNI != u.Hostname() {
			t.Errorf("client SNI %q", r.TLS.Client.SNI)
		}
		if r.TLS.Client != nil && r.TLS.Client.ALPN != "" && r.TLS.Client.ALPN != "http/1.1" {
			t.Errorf("client ALPN %q, want http/1.1 or none", r.TLS.Client.ALPN)
		}
		for _, f := range r.Findings {
			// The JDK offers no subprotocol (subprotocol-none-offered, info).
			if f.Severity != record.SevInfo {
				t.Errorf("finding on a clean JDK session: %+v", f)
			}
		}
		t.Logf("JDK session: client TLS %s %s, upstream TLS %s %s, pong RTT %+v ms, ping interval %+v ms",
			r.TLS.Client.Version, r.TLS.Client.Cipher, r.TLS.Upstream.Version, r.TLS.Upstream.Cipher,
			*k.UpstreamPongRTTMS, *k.ClientPingIntervalMS)
	})

	t.Run("untrusted", func(t *testing.T) {
		t.Parallel()
		upURL, pool := wsServer(t, true, echo)
		p := startForwardProxy(t, func(c *Config) { c.UpstreamCAs = pool })
		last, out := caRunJava(t, java, client, nil, upURL+"/chat", "--proxy", p.srv.Addr().String(),
			"--pings", "1", "--messages", "1")
		if !strings.HasPrefix(last, "RESULT fail javax.net.ssl.SSLHandshakeException") {
			t.Fatalf("last line %q, want RESULT fail javax.net.ssl.SSLHandshakeException...\n%s", last, out)
		}
		p.waitRecords(1)
		recs := p.records()
		if len(recs) != 1 {
			t.Fatalf("%d records, want 1: %+v", len(recs), recs)
		}
		r := recs[0]
		u, _ := url.Parse(upURL)
		if r.Verdict != record.VerdictTLSClient || r.End.How != record.HowTLSError || r.End.First != record.SideClient {
			t.Errorf("verdict %s end %+v, want tls-failed-client", r.Verdict, r.End)
		}
		if r.Target != "wss://"+u.Host+"/" {
			t.Errorf("target %q", r.Target)
		}
		if r.TLS.Client == nil || r.TLS.Client.Alert == "" || r.TLS.Client.Error == "" {
			t.Fatalf("client TLS leg %+v: want the alert Java sent", r.TLS.Client)
		}
		if r.ClientCloseCode != nil || r.UpstreamCloseCode != nil || r.Abnormal {
			t.Errorf("a session without a 101 has close codes %v %v abnormal %v", r.ClientCloseCode, r.UpstreamCloseCode, r.Abnormal)
		}
		t.Logf("JDK without the trust store: alert %q, error %q", r.TLS.Client.Alert, r.TLS.Client.Error)
	})
}

// TestIntegrationNoSNIUsesConnectHost: a ClientHello without SNI (clients
// send none for an IP address) gets a leaf for the CONNECT host. The target
// listens on 127.0.0.2 so the leaf's fixed loopback names cannot hide a miss.
func TestIntegrationNoSNIUsesConnectHost(t *testing.T) {
	t.Parallel()
	target := testkit.Listen(t, "127.0.0.2", func(c net.Conn) { io.Copy(io.Discard, c) })
	p := startForwardProxy(t)
	conn := connectTunnel(t, p.srv.Addr().String(), target)
	var sawSNI string
	tc := tls.Client(conn, &tls.Config{ServerName: "", InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			sawSNI = cs.ServerName
			return nil
		}})
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS through CONNECT: %v", err)
	}
	st := tc.ConnectionState()
	tc.Close()
	if sawSNI != "" {
		t.Fatalf("client sent SNI %q; the test needs none", sawSNI)
	}
	leaf := st.PeerCertificates[0]
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if !slices.Contains(ips, "127.0.0.2") {
		t.Errorf("leaf without SNI: IP SANs %v, DNS names %v, want the CONNECT host 127.0.0.2", ips, leaf.DNSNames)
	}
	if err := leaf.VerifyHostname("127.0.0.2"); err != nil {
		t.Errorf("leaf does not verify for the CONNECT host: %v", err)
	}
	opts := x509.VerifyOptions{Roots: p.ca.Pool(), DNSName: "127.0.0.2", Intermediates: x509.NewCertPool()}
	if _, err := leaf.Verify(opts); err != nil {
		t.Errorf("leaf does not chain to wstap's CA: %v", err)
	}
}

// connectTunnel opens a CONNECT tunnel to target through the proxy at addr.
func connectTunnel(t testing.TB, addr, target string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	// Read the response head byte by byte: nothing of the tunnel may be buffered away.
	var head []byte
	b := make([]byte, 1)
	for !strings.HasSuffix(string(head), "\r\n\r\n") {
		if _, err := c.Read(b); err != nil {
			t.Fatalf("CONNECT %s: %v after %q", target, err, head)
		}
		head = append(head, b[0])
	}
	c.SetReadDeadline(time.Time{})
	if !strings.HasPrefix(string(head), "HTTP/1.1 200") {
		t.Fatalf("CONNECT %s: %q", target, head)
	}
	return c
}
