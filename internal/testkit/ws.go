package testkit

import (
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// Echo echoes every message of a gorilla/websocket session until it ends;
// gorilla's default handlers answer pings and close frames.
func Echo(c *websocket.Conn) {
	for {
		mt, p, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(mt, p); err != nil {
			return
		}
	}
}

// Handler upgrades every request with up (a zero Upgrader when nil) and runs
// handle on the session, closing it when handle returns.
func Handler(up *websocket.Upgrader, handle func(c *websocket.Conn)) http.Handler {
	if up == nil {
		up = &websocket.Upgrader{}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		handle(c)
	})
}

// EchoHandler is a gorilla/websocket echo on every path.
func EchoHandler() http.Handler { return Handler(nil, Echo) }

// WSServer is an upstream served by httptest, closed when the test ends:
// Handler(up, handle), over TLS with httptest's certificate when tlsOn.
// It returns the ws:// or wss:// URL and, with TLS, a pool that trusts
// the certificate.
func WSServer(t testing.TB, tlsOn bool, up *websocket.Upgrader, handle func(c *websocket.Conn)) (wsURL string, pool *x509.CertPool) {
	t.Helper()
	h := Handler(up, handle)
	var ts *httptest.Server
	if tlsOn {
		ts = httptest.NewTLSServer(h)
		pool = x509.NewCertPool()
		pool.AddCert(ts.Certificate())
	} else {
		ts = httptest.NewServer(h)
	}
	t.Cleanup(ts.Close)
	return "ws" + strings.TrimPrefix(ts.URL, "http"), pool
}

// EchoServer is a gorilla/websocket echo upstream (see WSServer).
func EchoServer(t testing.TB, tlsOn bool) (wsURL string, pool *x509.CertPool) {
	t.Helper()
	return WSServer(t, tlsOn, nil, Echo)
}
