package proxy

import (
	"crypto/tls"
	"testing"

	"github.com/gorilla/websocket"
)

// TestTLSEndRecorded: an upstream that ends its TLS with close_notify and
// one that drops the TCP connection under it are told apart in the record
// (tls.upstream.end), as both give the client the same 1006.
func TestTLSEndRecorded(t *testing.T) {
	for _, c := range []struct {
		name, want string
		drop       func(*websocket.Conn)
	}{
		{"close_notify", "close_notify", func(c *websocket.Conn) { c.UnderlyingConn().Close() }},
		{"bare tcp", "tcp", func(c *websocket.Conn) { c.UnderlyingConn().(*tls.Conn).NetConn().Close() }},
	} {
		t.Run(c.name, func(t *testing.T) {
			upURL, pool := wsServer(t, true, func(ws *websocket.Conn) {
				ws.ReadMessage()
				c.drop(ws)
			})
			p := startTestProxy(t, upURL, false, pool)
			cl, _, err := p.dialer().Dial(p.url("/"), nil)
			if err != nil {
				t.Fatal(err)
			}
			cl.WriteMessage(websocket.TextMessage, []byte("bye"))
			if _, _, err := cl.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseAbnormalClosure) {
				t.Errorf("client error %v, want 1006", err)
			}
			cl.Close()
			p.waitRecords(1)
			r := p.records()[0]
			if r.Verdict != "abnormal-upstream-drop" || r.TLS.Upstream == nil || r.TLS.Upstream.End != c.want {
				t.Errorf("verdict %s tls.upstream %+v, want end %q", r.Verdict, r.TLS.Upstream, c.want)
			}
		})
	}
}
