package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wstap/wstap/capture/record"
)

// TestDataWithUpgradeRequest: a client that writes its upgrade request and
// its first (masked) frame in one write; the frame must reach the upstream,
// on a plain and on a TLS client leg.
func TestDataWithUpgradeRequest(t *testing.T) {
	for _, clientTLS := range []bool{false, true} {
		name := "ws"
		if clientTLS {
			name = "wss"
		}
		t.Run(name, func(t *testing.T) {
			got := make(chan string, 1)
			upURL, _ := wsServer(t, false, func(c *websocket.Conn) {
				_, m, err := c.ReadMessage()
				if err != nil {
					got <- "error: " + err.Error()
					return
				}
				got <- string(m)
				c.WriteMessage(websocket.TextMessage, m)
				echo(c)
			})
			p := startTestProxy(t, upURL, clientTLS, nil)
			addr := p.srv.Addr().String()
			var conn net.Conn
			var err error
			if clientTLS {
				conn, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: p.ca.Pool(), ServerName: "127.0.0.1"})
			} else {
				conn, err = net.Dial("tcp", addr)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			rc := &rawConn{Conn: conn, br: bufio.NewReader(conn)}
			req, key := rawUpgradeRequest(addr, "/early")
			one := append([]byte(req), rawFrame(true, 0, 1, true, []byte("early bird"))...)
			if n, err := conn.Write(one); err != nil || n != len(one) {
				t.Fatalf("write: %d %v", n, err)
			}
			st, hdr, _, err := rc.readResponse()
			if err != nil || st != 101 || hdr.Get("Sec-WebSocket-Accept") != acceptFor(key) {
				t.Fatalf("upgrade: %d %v %v", st, hdr, err)
			}
			select {
			case m := <-got:
				if m != "early bird" {
					t.Fatalf("upstream got %q, want the frame sent with the request", m)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the frame sent with the upgrade request never reached the upstream")
			}
			if b0, pl, masked, err := rc.readFrame(); err != nil || b0 != 0x81 || masked || string(pl) != "early bird" {
				t.Fatalf("echo: %#x %q masked=%v %v", b0, pl, masked, err)
			}
			rc.Write(rawFrame(true, 0, 8, true, []byte{0x03, 0xe8}))
			if b0, pl, _, err := rc.readFrame(); err != nil || b0 != 0x88 || len(pl) < 2 {
				t.Fatalf("close: %#x %q %v", b0, pl, err)
			}
			rc.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.Copy(io.Discard, rc)
			conn.Close()
			r := oneRecord(t, p)
			cu := r.Frames.ClientToUpstream
			if cu.Frames != 2 || cu.Text != 1 || cu.Close != 1 || cu.Bytes != int64(len(rawFrame(true, 0, 1, true, []byte("early bird")))+8) {
				t.Errorf("client_to_upstream %+v", cu)
			}
			if r.Verdict != record.VerdictClean {
				t.Errorf("verdict %q", r.Verdict)
			}
		})
	}
}

// TestDataWithUpgradeResponse: an upstream that writes its 101 and its first
// frame in one write; the frame must reach the client.
func TestDataWithUpgradeResponse(t *testing.T) {
	const first = "sent in the same write as the 101"
	addr := rawServer(t, func(c *rawConn) {
		_, hdr, err := c.readRequest()
		if err != nil {
			return
		}
		one := append([]byte(response101(hdr.Get("Sec-WebSocket-Key"))), rawFrame(true, 0, 1, false, []byte(first))...)
		if _, err := c.Write(one); err != nil {
			return
		}
		// Answer the client's close frame with one, then end.
		for {
			b0, pl, _, err := c.readFrame()
			if err != nil {
				return
			}
			if b0&0x0f == 8 {
				c.Write(rawFrame(true, 0, 8, false, pl))
				return
			}
		}
	})
	p := startTestProxy(t, "ws://"+addr, false, nil)
	c, _, err := p.dialer().Dial(p.url("/late"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	mt, m, err := c.ReadMessage()
	if err != nil || mt != websocket.TextMessage || string(m) != first {
		t.Fatalf("client got %d %q %v, want the frame sent with the 101", mt, m, err)
	}
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, 1000) {
		t.Errorf("close: %v", err)
	}
	c.Close()
	r := oneRecord(t, p)
	uc := r.Frames.UpstreamToClient
	if uc.Text != 1 || uc.Close != 1 || uc.Frames != 2 {
		t.Errorf("upstream_to_client %+v", uc)
	}
	checkEnd(t, r, endWant{record.VerdictClean, record.SideClient, record.HowCloseHandshake, closeCode(1000), closeCode(1000), false})
}
