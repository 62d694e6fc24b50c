package proxy

import (
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// waitRelayed polls Server.Relayed until ok accepts it (5 s at most).
func waitRelayed(t *testing.T, srv *Server, ok func(c2u, u2c Relayed) bool) (Relayed, Relayed) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c2u, u2c := srv.Relayed()
		if ok(c2u, u2c) {
			return c2u, u2c
		}
		if time.Now().After(deadline) {
			t.Fatalf("Relayed stayed at client→upstream %+v, upstream→client %+v", c2u, u2c)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRelayedLive: the frames of two gorilla sessions still open are counted
// as they pass, exactly; once the sessions end, the totals are those of the
// records, and no figure ever went down on the way (a scraper polls
// throughout).
func TestRelayedLive(t *testing.T) {
	upURL, _ := wsServer(t, false, echo)
	p := startTestProxy(t, upURL, false, nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var last [2]Relayed
		for {
			c2u, u2c := p.srv.Relayed()
			for i, r := range [2]Relayed{c2u, u2c} {
				l := last[i]
				if r.Frames < l.Frames || r.Bytes < l.Bytes || r.Pings < l.Pings || r.Pongs < l.Pongs {
					t.Errorf("direction %d went down: %+v after %+v", i, r, l)
				}
				last[i] = r
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()

	var conns []*websocket.Conn
	for range 2 {
		c, _, err := p.dialer().Dial(p.url("/live"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
		if err := c.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := c.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.ReadMessage(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Per open session: client→upstream a masked ping of 1 byte (7 wire
	// bytes) and 3 masked texts of 5 (11 each); upstream→client the pong (3)
	// and 3 texts (7 each).
	c2u, u2c := waitRelayed(t, p.srv, func(c2u, u2c Relayed) bool { return u2c.Frames >= 8 })
	if want := (Relayed{Frames: 8, Bytes: 80, Pings: 2}); c2u != want {
		t.Errorf("open sessions, client→upstream %+v, want %+v", c2u, want)
	}
	if want := (Relayed{Frames: 8, Bytes: 48, Pongs: 2}); u2c != want {
		t.Errorf("open sessions, upstream→client %+v, want %+v", u2c, want)
	}
	if n := p.rec.Counters().Sessions; n != 0 {
		t.Fatalf("%d sessions recorded already; the counts above must be of open sessions", n)
	}

	for _, c := range conns {
		c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				break
			}
		}
		c.Close()
	}
	p.waitRecords(2)
	recs := p.records() // stops the proxy: every session is untracked
	close(stop)
	wg.Wait()
	c2u, u2c = p.srv.Relayed()
	var want [2]Relayed
	for _, r := range recs {
		for i, d := range [2]struct{ Frames, Bytes, Ping, Pong int64 }{
			{r.Frames.ClientToUpstream.Frames, r.Frames.ClientToUpstream.Bytes, r.Frames.ClientToUpstream.Ping, r.Frames.ClientToUpstream.Pong},
			{r.Frames.UpstreamToClient.Frames, r.Frames.UpstreamToClient.Bytes, r.Frames.UpstreamToClient.Ping, r.Frames.UpstreamToClient.Pong},
		} {
			want[i].add(Relayed{Frames: d.Frames, Bytes: d.Bytes, Pings: d.Ping, Pongs: d.Pong})
		}
	}
	if c2u != want[0] || u2c != want[1] {
		t.Errorf("after the end: %+v / %+v, the records say %+v / %+v", c2u, u2c, want[0], want[1])
	}
	if c2u.Frames != 10 || u2c.Frames != 10 {
		t.Errorf("frames after the end %d / %d, want 10 each way (a close frame more)", c2u.Frames, u2c.Frames)
	}
}
