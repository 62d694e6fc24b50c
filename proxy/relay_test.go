package proxy

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/gorilla/websocket"
)

// TestRelayByteExact sends messages across the length-encoding boundaries
// through wstap, ws and wss on both legs, and compares SHA-256 sums of what
// each end got with what the other sent; the record's frame counts must
// equal what was sent.
func TestRelayByteExact(t *testing.T) {
	sizes := []int{0, 1, 124, 125, 126, 127, 65534, 65535, 65536, 65537, 1 << 20, 16 << 20}
	for _, legs := range []struct{ cli, up bool }{{false, false}, {true, true}, {false, true}, {true, false}} {
		t.Run(fmt.Sprintf("clientTLS=%v/upstreamTLS=%v", legs.cli, legs.up), func(t *testing.T) {
			upURL, pool := wsServer(t, legs.up, echo)
			p := startTestProxy(t, upURL, legs.cli, pool)
			c, resp, err := p.dialer().Dial(p.url("/chat"), nil)
			if err != nil {
				t.Fatalf("dial through wstap: %v", err)
			}
			if resp.StatusCode != 101 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			sent := 0
			for i, n := range sizes {
				msg := make([]byte, n)
				rand.Read(msg)
				mt := websocket.BinaryMessage
				if i%2 == 0 {
					mt = websocket.TextMessage
					for j := range msg {
						msg[j] = 'a' + msg[j]%26
					}
				}
				if err := c.WriteMessage(mt, msg); err != nil {
					t.Fatal(err)
				}
				sent++
				gt, got, err := c.ReadMessage()
				if err != nil {
					t.Fatalf("size %d: %v", n, err)
				}
				if gt != mt || sha256.Sum256(got) != sha256.Sum256(msg) {
					t.Fatalf("size %d: echo differs (type %d, %d bytes)", n, gt, len(got))
				}
			}
			// A fragmented message with pings between the fragments.
			w, _ := c.NextWriter(websocket.TextMessage)
			w.Write([]byte("part one,"))
			if f, ok := w.(interface{ Flush() error }); ok {
				f.Flush()
			}
			w.Close()
			c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "done"))
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					break
				}
			}
			c.Close()
			p.waitRecords(1)
			recs := p.records()
			if len(recs) != 1 {
				t.Fatalf("%d records, want 1", len(recs))
			}
			r := recs[0]
			if r.Verdict != "clean" || r.Abnormal || *r.ClientCloseCode != 1000 {
				t.Errorf("verdict %s abnormal %v client_close_code %v", r.Verdict, r.Abnormal, *r.ClientCloseCode)
			}
			cu := r.Frames.ClientToUpstream
			if cu.Text+cu.Binary != int64(sent+1) || cu.Close != 1 {
				t.Errorf("client→upstream frames %+v, want %d messages and 1 close", cu, sent+1)
			}
			if !bytes.Contains([]byte(r.Target), []byte("/chat")) {
				t.Errorf("target %q", r.Target)
			}
		})
	}
}
