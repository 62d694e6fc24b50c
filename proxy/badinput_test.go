package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wstap/wstap/capture/record"
	"github.com/wstap/wstap/frames"
)

// badInputUpstream is an upstream written by hand so that it accepts what a
// library would refuse: /raw answers 101 and then echoes bytes as they come
// (frames however broken); /badkey records the key it received and answers
// 400; any other path is a frame-by-frame echo server for healthy sessions.
func badInputUpstream(t *testing.T, keys chan<- string) string {
	return rawServer(t, func(c *rawConn) {
		line, hdr, err := c.readRequest()
		if err != nil {
			return
		}
		key := hdr.Get("Sec-WebSocket-Key")
		switch {
		case strings.HasPrefix(line, "GET /raw "):
			c.Write([]byte(response101(key)))
			io.Copy(c, c.br)
			c.Conn.(*net.TCPConn).CloseWrite()
		case strings.HasPrefix(line, "GET /badkey "):
			keys <- key
			body := "bad Sec-WebSocket-Key\n"
			fmt.Fprintf(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
		default:
			c.Write([]byte(response101(key)))
			for {
				c.SetReadDeadline(time.Now().Add(30 * time.Second))
				b0, pl, _, err := c.readFrame()
				if err != nil {
					return
				}
				switch op := b0 & 0x0f; op {
				case 8:
					c.Write(rawFrame(true, 0, 8, false, pl))
					return
				case 9:
					c.Write(rawFrame(true, 0, 10, false, pl))
				default:
					c.Write(rawFrame(b0&0x80 != 0, b0>>4&7, op, false, pl))
				}
			}
		}
	})
}

// TestBadInput runs each kind of bad input through one proxy while healthy
// echo sessions run beside it, byte-exact, the whole time.
func TestBadInput(t *testing.T) {
	keys := make(chan string, 1)
	up := badInputUpstream(t, keys)
	p := startTestProxy(t, "ws://"+up, false, nil, func(c *Config) { c.HeaderTimeout = 300 * time.Millisecond })
	addr := p.srv.Addr().String()
	stopHealthy := healthyBeside(t, p, 3)
	rejectedFrom := map[string]string{} // client address → kind

	t.Run("header-over-max", func(t *testing.T) {
		rc := rawDial(t, addr)
		// 1 MiB of headers: the proxy answers while the client still writes.
		big := "GET /big HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\n" + strings.Repeat("X-Big: "+strings.Repeat("a", 1000)+"\r\n", 1<<10) + "\r\n"
		wrote := make(chan error, 1)
		go func() { _, err := rc.Write([]byte(big)); wrote <- err }()
		st, hdr, body, err := rc.readResponse()
		rc.Close()
		<-wrote
		if err != nil || st != 431 {
			t.Fatalf("got %d %v, want 431", st, err)
		}
		if !strings.Contains(body, "max-header-bytes") || hdr.Get("X-Wstap-Error") == "" {
			t.Errorf("431 without the reason: %q %v", body, hdr)
		}
		rejectedFrom[rc.LocalAddr().String()] = "http-431"
	})

	t.Run("header-timeout", func(t *testing.T) {
		rc := rawDial(t, addr)
		start := time.Now()
		rc.Write([]byte("GET /slow HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\n"))
		rc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := io.Copy(io.Discard, rc)
		cut := time.Since(start)
		t.Logf("cut after %v", cut.Round(time.Millisecond))
		if err != nil {
			t.Fatalf("after %v: %d bytes, %v; want the connection closed", cut, n, err)
		}
		if cut < 300*time.Millisecond || cut > 3*time.Second {
			t.Errorf("cut after %v, want 300 ms", cut)
		}
		rejectedFrom[rc.LocalAddr().String()] = "header-timeout"
	})

	t.Run("header-timeout-trickle", func(t *testing.T) {
		// A slow-loris client sending a byte every 50 ms is cut at the same
		// 300 ms: the deadline bounds the whole head, not each read.
		rc := rawDial(t, addr)
		start := time.Now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, b := range []byte("GET /trickle HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n") {
				if _, err := rc.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
		rc.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.Copy(io.Discard, rc)
		cut := time.Since(start)
		rc.Close()
		<-done
		t.Logf("trickle cut after %v", cut.Round(time.Millisecond))
		if (err != nil && !errors.Is(err, syscall.ECONNRESET)) || cut < 300*time.Millisecond || cut > 3*time.Second {
			t.Errorf("cut after %v (%v), want 300 ms", cut, err)
		}
		rejectedFrom[rc.LocalAddr().String()] = "header-timeout"
	})

	t.Run("malformed-request-line", func(t *testing.T) {
		rc := rawDial(t, addr)
		rc.Write([]byte("GET /a b HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\n\r\n"))
		st, hdr, body, err := rc.readResponse()
		if err != nil || st != 400 {
			t.Fatalf("got %d %v, want 400", st, err)
		}
		if !strings.Contains(body, "malformed request line") || !strings.Contains(hdr.Get("X-Wstap-Error"), "malformed request line") {
			t.Errorf("400 without the reason: %q %v", body, hdr)
		}
		rejectedFrom[rc.LocalAddr().String()] = "http-400"
	})

	t.Run("garbage-key", func(t *testing.T) {
		rc := rawDial(t, addr)
		req := "GET /badkey HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: not a key!\r\nSec-WebSocket-Version: 13\r\n\r\n"
		rc.Write([]byte(req))
		st, _, body, err := rc.readResponse()
		if err != nil || st != 400 || body != "bad Sec-WebSocket-Key\n" {
			t.Fatalf("got %d %q %v, want the upstream's 400", st, body, err)
		}
		select {
		case k := <-keys:
			if k != "not a key!" {
				t.Errorf("upstream got key %q, want it forwarded as it was", k)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("request never reached the upstream")
		}
	})

	// rawSession upgrades /raw by hand.
	rawSession := func(t *testing.T) *rawConn {
		rc := rawDial(t, addr)
		req, _ := rawUpgradeRequest(addr, "/raw")
		rc.Write([]byte(req))
		if st, _, _, err := rc.readResponse(); err != nil || st != 101 {
			t.Fatalf("upgrade: %d %v", st, err)
		}
		return rc
	}
	// endRaw half-closes and expects the upstream's FIN back.
	endRaw := func(t *testing.T, rc *rawConn) {
		rc.Conn.(*net.TCPConn).CloseWrite()
		rc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := io.Copy(io.Discard, rc.br); n != 0 || err != nil {
			t.Errorf("after the echo: %d more bytes, %v", n, err)
		}
		rc.Close()
	}
	// roundTrip writes b and expects exactly b back.
	roundTrip := func(t *testing.T, rc *rawConn, b []byte) {
		t.Helper()
		rc.Write(b)
		got := make([]byte, len(b))
		rc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(rc.br, got); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("echo of %d bytes differs or failed: %v", len(b), err)
		}
	}

	var badFrames []byte
	t.Run("rfc6455-violations", func(t *testing.T) {
		rc := rawSession(t)
		long := bytes.Repeat([]byte("p"), 126)
		for _, f := range [][]byte{
			rawFrame(true, 0, 1, false, []byte("unmasked")),   // frame-unmasked-client
			rawFrame(true, 0, 3, true, []byte("r")),           // frame-reserved-opcode
			rawFrame(true, 4, 1, true, []byte("rsv1")),        // frame-rsv-without-extension
			rawFrame(true, 0, 9, true, long),                  // frame-control-too-long
			rawFrame(false, 0, 9, true, []byte("frag")),       // frame-control-fragmented
			rawFrame(true, 0, 0, true, []byte("orphan")),      // frame-fragment-order
			rawFrame(true, 0, 8, true, []byte{0x03}),          // frame-close-invalid (1-byte payload)
			rawFrame(true, 0, 1, true, []byte("after close")), // frame-after-close
		} {
			badFrames = append(badFrames, f...)
		}
		roundTrip(t, rc, badFrames)
		endRaw(t, rc)
	})

	var tunnelSent, tunnelBefore int
	t.Run("unparsable-header-tunnel", func(t *testing.T) {
		rc := rawSession(t)
		before := rawFrame(true, 0, 1, true, []byte("before"))
		roundTrip(t, rc, before)
		// A 64-bit length with its most significant bit set (RFC 6455 §5.2
		// forbids it): the rest of the session is a byte tunnel.
		bad := []byte{0x82, 0xff}
		bad = binary.BigEndian.AppendUint64(bad, 1<<63|5)
		bad = append(bad, 1, 2, 3, 4)
		bad = append(bad, "tunnelled bytes"...)
		roundTrip(t, rc, bad)
		more := []byte("\x00\x01 more bytes that are not frames at all")
		roundTrip(t, rc, more)
		tunnelSent, tunnelBefore = len(bad)+len(more), len(before)
		endRaw(t, rc)
	})

	msgs := stopHealthy()
	t.Logf("healthy sessions: %d messages echoed byte-exact beside the bad input", msgs)
	if msgs < 10 {
		t.Errorf("only %d healthy messages", msgs)
	}
	p.waitRecords(6)
	recs := p.records()
	evs := p.events()

	byPath := map[string]*record.Session{}
	for i := range recs {
		r := &recs[i]
		u := r.Target[strings.Index(r.Target[len("ws://"):], "/")+len("ws://"):]
		byPath[u] = r
	}
	if len(recs) != 6 {
		var ts []string
		for _, r := range recs {
			ts = append(ts, r.Target)
		}
		t.Errorf("%d records (%v), want 3 healthy, badkey, raw, raw; rejected requests get none", len(recs), ts)
	}
	var healthyMsgs int64
	for i := 0; i < 3; i++ {
		r := byPath[fmt.Sprintf("/healthy/%d", i)]
		if r == nil {
			t.Errorf("no record of healthy session %d", i)
			continue
		}
		cu, uc := r.Frames.ClientToUpstream, r.Frames.UpstreamToClient
		healthyMsgs += cu.Binary
		if r.Verdict != record.VerdictClean || len(r.Findings) > 1 || cu.Binary != uc.Binary || cu.Bytes != uc.Bytes+4*cu.Frames {
			t.Errorf("healthy session %d: verdict %s findings %v frames %+v / %+v", i, r.Verdict, r.Findings, cu, uc)
		}
	}
	if healthyMsgs != int64(msgs) {
		t.Errorf("healthy records count %d messages, the clients sent %d", healthyMsgs, msgs)
	}
	if r := byPath["/badkey"]; r == nil {
		t.Error("no record of the request with a garbage key")
	} else {
		if r.Verdict != record.VerdictRejected || r.Handshake.Status != 400 {
			t.Errorf("badkey: verdict %s status %d", r.Verdict, r.Handshake.Status)
		}
		wantRules(t, "badkey", r, "key-format", "status-not-101")
	}
	var raw []*record.Session
	for i := range recs {
		if strings.HasSuffix(recs[i].Target, "/raw") {
			raw = append(raw, &recs[i])
		}
	}
	if len(raw) != 2 {
		t.Fatalf("%d /raw records", len(raw))
	}
	bad, tun := raw[0], raw[1]
	if tun.Frames.ClientToUpstream.Tunnel == false {
		bad, tun = tun, bad
	}
	wantRules(t, "violations", bad, frames.RuleUnmaskedClient, frames.RuleReservedOpcode, frames.RuleRsvNoExtension,
		frames.RuleControlTooLong, frames.RuleControlFragmented, frames.RuleFragmentOrder, frames.RuleCloseInvalid,
		frames.RuleAfterClose, frames.RuleMaskedServer)
	if cu := bad.Frames.ClientToUpstream; cu.Frames != 8 || cu.Bytes != int64(len(badFrames)) || cu.Tunnel {
		t.Errorf("violations: client_to_upstream %+v, want 8 frames, %d bytes", cu, len(badFrames))
	}
	if uc := bad.Frames.UpstreamToClient; uc.Frames != 8 || uc.Bytes != int64(len(badFrames)) || uc.Tunnel {
		t.Errorf("violations: upstream_to_client %+v, want 8 frames, %d bytes", uc, len(badFrames))
	}
	wantRules(t, "tunnel", tun, frames.RuleHeaderUnparsable)
	for name, d := range map[string]record.DirFrames{"client_to_upstream": tun.Frames.ClientToUpstream, "upstream_to_client": tun.Frames.UpstreamToClient} {
		// Every byte is counted once: the frame before, then the tunnel
		// (the unparsable header itself may count on either side).
		if !d.Tunnel || d.Bytes+d.TunnelBytes != int64(tunnelBefore+tunnelSent) || d.TunnelBytes < int64(tunnelSent-14) || d.Text != 1 || d.Frames != 1 {
			t.Errorf("tunnel %s: %+v, want tunnel true, 1 text frame of %d bytes before, %d bytes in all", name, d, tunnelBefore, tunnelBefore+tunnelSent)
		}
	}

	// The rejected requests: one event each, with the client's address.
	got := map[string]string{}
	for _, e := range evs {
		if e["event"] == "rejected" {
			cl, _ := e["client"].(string)
			kind, _ := e["kind"].(string)
			got[cl] = kind
			if e["reason"] == "" || e["reason"] == nil {
				t.Errorf("rejected event without a reason: %v", e)
			}
		}
	}
	for cl, kind := range rejectedFrom {
		if got[cl] != kind {
			t.Errorf("rejected event for %s: %q, want %q (events: %v)", cl, got[cl], kind, got)
		}
	}
	if len(got) != len(rejectedFrom) {
		t.Errorf("%d rejected events, want %d", len(got), len(rejectedFrom))
	}
	if c := p.rec.Counters(); c.Rejected != int64(len(rejectedFrom)) {
		t.Errorf("run counters: %d rejected, want %d", c.Rejected, len(rejectedFrom))
	}
}

func wantRules(t *testing.T, name string, r *record.Session, rules ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, f := range r.Findings {
		have[f.Rule] = true
	}
	for _, rule := range rules {
		if !have[rule] {
			t.Errorf("%s: no %s finding among %v", name, rule, r.Findings)
		}
	}
}
