package testkit

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestEchoThroughConnectProxy: an echo over TLS reached through the CONNECT
// proxy, which counts one tunnel and refuses .invalid hosts.
func TestEchoThroughConnectProxy(t *testing.T) {
	wsURL, pool := EchoServer(t, true)
	addr, tunnels := ConnectProxy(t)
	pu, _ := url.Parse("http://" + addr)
	d := websocket.Dialer{Proxy: http.ProxyURL(pu), HandshakeTimeout: 5 * time.Second}
	d.TLSClientConfig = tlsConfig(pool)
	c, _, err := d.Dial(wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, got, err := c.ReadMessage(); err != nil || string(got) != "hi" {
		t.Fatalf("echo %q %v", got, err)
	}
	if n := tunnels(); n != 1 {
		t.Errorf("%d tunnels, want 1", n)
	}
	if _, _, err := d.Dial("ws://refused.invalid/", nil); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Errorf("CONNECT to .invalid: %v, want 403 Forbidden", err)
	}
}

func TestReadJSONL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.jsonl")
	if err := os.WriteFile(path, []byte("{\"id\":\"a\"}\n{\"id\":\"b\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := ReadJSONL[struct{ ID string }](t, path)
	if len(got) != 2 || got[0].ID != "a" || got[1].ID != "b" {
		t.Errorf("%+v", got)
	}
}

func TestFreeAddrWaitListening(t *testing.T) {
	addr := Listen(t, "127.0.0.1", func(c net.Conn) {})
	WaitListening(t, addr)
	if FreeAddr(t) == addr {
		t.Errorf("FreeAddr returned a listening address")
	}
}

func tlsConfig(pool *x509.CertPool) *tls.Config { return &tls.Config{RootCAs: pool} }
