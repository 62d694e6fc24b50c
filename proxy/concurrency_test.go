package proxy

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

// TestConcurrentSessions holds 2,000 sessions open at once through one
// proxy, then closes them all concurrently. Every session is recorded exactly
// once, and concurrent_at_end counts the sessions open when each ended: the
// values are exactly 1..2000 (the first to end saw all 2,000 open). Once all
// sessions have ended and the proxy and upstream are closed, no goroutine of
// the test is left.
func TestConcurrentSessions(t *testing.T) {
	const n, workers = 2000, 40
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs last
	start := time.Now()
	upURL, _ := wsServer(t, false, echo)
	p := startTestProxy(t, upURL, false, nil)

	conns := make([]*websocket.Conn, n)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := p.dialer()
			d.ReadBufferSize, d.WriteBufferSize = 512, 512
			for i := w; i < n; i += workers {
				c, _, err := d.Dial(p.url(fmt.Sprintf("/c/%d", i)), nil)
				if err != nil {
					failed.Add(1)
					t.Errorf("session %d: dial: %v", i, err)
					continue
				}
				conns[i] = c
				msg := []byte(fmt.Sprintf("session %d", i))
				c.WriteMessage(websocket.TextMessage, msg)
				if _, m, err := c.ReadMessage(); err != nil || string(m) != string(msg) {
					failed.Add(1)
					t.Errorf("session %d: echo %q %v", i, m, err)
				}
			}
		}()
	}
	wg.Wait()
	opened := time.Since(start)
	if failed.Load() > 0 {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		t.Fatalf("%d sessions failed to open", failed.Load())
	}
	if a := p.srv.active.Load(); a != n {
		t.Errorf("%d sessions active with all %d open", a, n)
	}

	// Close all at once, cleanly.
	closeStart := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				c := conns[i]
				c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, 1000) {
					t.Errorf("session %d: close: %v", i, err)
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	p.waitRecords(n)
	closed := time.Since(closeStart)
	recs := p.records()
	t.Logf("%d sessions opened in %v, closed in %v; %d records", n, opened.Round(time.Millisecond), closed.Round(time.Millisecond), len(recs))

	if len(recs) != n {
		t.Fatalf("%d records, want %d", len(recs), n)
	}
	ids := map[string]bool{}
	paths := map[string]bool{}
	var cae []int
	for i := range recs {
		r := &recs[i]
		if ids[r.ID] {
			t.Errorf("session id %s recorded twice", r.ID)
		}
		ids[r.ID] = true
		paths[r.Target] = true
		if r.Verdict != "clean" || r.Abnormal {
			t.Errorf("%s: verdict %s abnormal %v", r.ID, r.Verdict, r.Abnormal)
		}
		cae = append(cae, r.ConcurrentAtEnd)
	}
	if len(paths) != n {
		t.Errorf("%d distinct targets among %d records: a session was recorded twice or lost", len(paths), n)
	}
	sort.Ints(cae)
	for i, v := range cae {
		if v != i+1 {
			t.Fatalf("concurrent_at_end sorted: position %d is %d, want %d (min %d, max %d)", i, v, i+1, cae[0], cae[n-1])
		}
	}
	if a := p.srv.active.Load(); a != 0 {
		t.Errorf("%d sessions still counted active", a)
	}
}
