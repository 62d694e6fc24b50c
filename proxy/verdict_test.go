package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/gorilla/websocket"

	"github.com/wstap/wstap/capture/record"
)

// want is the ending of a session as docs/records.md defines it; a nil code means
// the field must be null (no 101).
type endWant struct {
	verdict  record.Verdict
	first    record.Side
	how      record.How
	cc, uc   *int
	abnormal bool
}

// tcpOf is the TCP connection under c (under its TLS, if any).
func tcpOf(c net.Conn) *net.TCPConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	return c.(*net.TCPConn)
}

func closeCode(c int) *int { return &c }

func checkEnd(t *testing.T, r *record.Session, w endWant) {
	t.Helper()
	if r.Verdict != w.verdict {
		t.Errorf("verdict %q, want %q (end %+v)", r.Verdict, w.verdict, r.End)
	}
	if r.End.First != w.first {
		t.Errorf("end.first %q, want %q", r.End.First, w.first)
	}
	if r.End.How != w.how {
		t.Errorf("end.how %q, want %q (error %q)", r.End.How, w.how, r.End.Error)
	}
	codeEq := func(name string, got, want *int) {
		switch {
		case want == nil && got != nil:
			t.Errorf("%s %d, want null", name, *got)
		case want != nil && got == nil:
			t.Errorf("%s null, want %d", name, *want)
		case want != nil && *got != *want:
			t.Errorf("%s %d, want %d", name, *got, *want)
		}
	}
	codeEq("client_close_code", r.ClientCloseCode, w.cc)
	codeEq("upstream_close_code", r.UpstreamCloseCode, w.uc)
	if r.Abnormal != w.abnormal {
		t.Errorf("abnormal %v, want %v", r.Abnormal, w.abnormal)
	}
}

// oneRecord waits for the single session of a test proxy and returns it.
func oneRecord(t *testing.T, p *testProxy) *record.Session {
	t.Helper()
	p.waitRecords(1)
	recs := p.records()
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	return &recs[0]
}

// hello exchanges one message so the session is established both ways.
func hello(t *testing.T, c *websocket.Conn) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, m, err := c.ReadMessage(); err != nil || string(m) != "hello" {
		t.Fatalf("hello: %q %v", m, err)
	}
}

// helloThen is an upstream handler that echoes one message and then does act.
func helloThen(act func(c *websocket.Conn)) func(c *websocket.Conn) {
	return func(c *websocket.Conn) {
		mt, m, err := c.ReadMessage()
		if err != nil {
			return
		}
		c.WriteMessage(mt, m)
		act(c)
	}
}

// helloThroughProxy starts upstream handle behind a proxy, dials it with
// gorilla through the proxy and exchanges a first "hello" message.
func helloThroughProxy(t *testing.T, tlsOn bool, handle func(c *websocket.Conn)) (*testProxy, *websocket.Conn) {
	t.Helper()
	upURL, pool := wsServer(t, tlsOn, handle)
	p := startTestProxy(t, upURL, tlsOn, pool)
	c, _, err := p.dialer().Dial(p.url("/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	hello(t, c)
	return p, c
}

// rawUpgraded dials the proxy by hand and upgrades to path: a client that
// does only what the test makes it do (no automatic close answer).
func rawUpgraded(t *testing.T, p *testProxy, path string) *rawConn {
	t.Helper()
	rc := p.rawClient(t)
	req, _ := rawUpgradeRequest(p.srv.Addr().String(), path)
	rc.Write([]byte(req))
	if st, _, _, err := rc.readResponse(); err != nil || st != 101 {
		t.Fatalf("upgrade: %d %v", st, err)
	}
	return rc
}

// upstreamReadErr is an upstream handler that echoes the hello, then sends
// on errc what its next read returns: how it saw the client end.
func upstreamReadErr(errc chan<- error) func(c *websocket.Conn) {
	return helloThen(func(c *websocket.Conn) {
		_, _, err := c.ReadMessage()
		errc <- err
	})
}

func TestVerdictMatrix(t *testing.T) {
	// The cases where both peers are up run with TLS on neither and on both legs.
	for _, tlsOn := range []bool{false, true} {
		legs := "ws"
		if tlsOn {
			legs = "wss"
		}
		t.Run(legs, func(t *testing.T) {
			t.Run("clean/client-first", func(t *testing.T) {
				p, c := helloThroughProxy(t, tlsOn, echo)
				c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "done"))
				_, _, err := c.ReadMessage()
				if !websocket.IsCloseError(err, 1000) {
					t.Fatalf("client read after its close: %v, want the upstream's close 1000", err)
				}
				c.Close()
				r := oneRecord(t, p)
				checkEnd(t, r, endWant{record.VerdictClean, record.SideClient, record.HowCloseHandshake, closeCode(1000), closeCode(1000), false})
				if r.Close.Client == nil || r.Close.Client.Reason != "done" || r.Close.Upstream == nil {
					t.Errorf("close %+v / %+v", r.Close.Client, r.Close.Upstream)
				}
			})

			t.Run("clean/upstream-first", func(t *testing.T) {
				p, c := helloThroughProxy(t, tlsOn, helloThen(func(c *websocket.Conn) {
					c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1001, "going away"), time.Now().Add(time.Second))
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					for {
						if _, _, err := c.ReadMessage(); err != nil {
							return
						}
					}
				}))
				// gorilla's default close handler answers with the same code.
				if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, 1001) {
					t.Fatalf("client read: %v, want close 1001", err)
				}
				// Wait for the upstream's FIN before closing, as RFC 6455 §7.1.1 asks.
				c.NetConn().SetReadDeadline(time.Now().Add(5 * time.Second))
				io.Copy(io.Discard, c.NetConn())
				c.Close()
				r := oneRecord(t, p)
				checkEnd(t, r, endWant{record.VerdictClean, record.SideUpstream, record.HowCloseHandshake, closeCode(1001), closeCode(1001), false})
			})

			t.Run("upstream-close-client-silent", func(t *testing.T) {
				upURL, pool := wsServer(t, tlsOn, func(c *websocket.Conn) {
					c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1008, "policy"), time.Now().Add(time.Second))
					// Wait for the client's close a while, then drop the TCP connection.
					c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
					c.ReadMessage()
				})
				p := startTestProxy(t, upURL, tlsOn, pool)
				rc := rawUpgraded(t, p, "/silent")
				b0, pl, _, err := rc.readFrame()
				if err != nil || b0&0x0f != 8 || len(pl) < 2 || int(pl[0])<<8|int(pl[1]) != 1008 {
					t.Fatalf("want the upstream's close 1008, got %#x %q %v", b0, pl, err)
				}
				// Never answer; the upstream's FIN is mirrored to us.
				rc.SetReadDeadline(time.Now().Add(5 * time.Second))
				if n, err := io.Copy(io.Discard, rc); err != nil || n != 0 {
					t.Fatalf("after the close: %d bytes, %v; want a FIN", n, err)
				}
				rc.Close()
				r := oneRecord(t, p)
				checkEnd(t, r, endWant{record.VerdictClosedUpstream, record.SideUpstream, record.HowEOF, closeCode(1008), closeCode(1006), false})
			})

			upstreamFIN := helloThen(func(c *websocket.Conn) { c.NetConn().Close() })

			t.Run("upstream-fin/gorilla", func(t *testing.T) {
				p, c := helloThroughProxy(t, tlsOn, upstreamFIN)
				_, _, err := c.ReadMessage()
				if !websocket.IsCloseError(err, websocket.CloseAbnormalClosure) {
					t.Fatalf("gorilla reports %v, want 1006 abnormal closure", err)
				}
				c.Close()
				r := oneRecord(t, p)
				checkEnd(t, r, endWant{record.VerdictAbnormalUp, record.SideUpstream, record.HowEOF, closeCode(1006), closeCode(1006), true})
			})

			t.Run("upstream-fin/coder", func(t *testing.T) {
				upURL, pool := wsServer(t, tlsOn, upstreamFIN)
				p := startTestProxy(t, upURL, tlsOn, pool)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				c, _, err := cws.Dial(ctx, p.url("/"), p.coderOptions(t))
				if err != nil {
					t.Fatal(err)
				}
				defer c.CloseNow()
				if err := c.Write(ctx, cws.MessageText, []byte("hello")); err != nil {
					t.Fatal(err)
				}
				if _, m, err := c.Read(ctx); err != nil || string(m) != "hello" {
					t.Fatalf("hello: %q %v", m, err)
				}
				_, _, err = c.Read(ctx)
				if err == nil || cws.CloseStatus(err) != -1 || errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("coder/websocket reports %v (close status %d), want a read error with no close frame (status -1, 1006 semantics)", err, cws.CloseStatus(err))
				}
				c.CloseNow()
				r := oneRecord(t, p)
				checkEnd(t, r, endWant{record.VerdictAbnormalUp, record.SideUpstream, record.HowEOF, closeCode(1006), closeCode(1006), true})
			})

			t.Run("upstream-rst", func(t *testing.T) {
				p, c := helloThroughProxy(t, tlsOn, helloThen(func(c *websocket.Conn) {
					tc := tcpOf(c.NetConn())
					tc.SetLinger(0)
					tc.Close()
				}))
				_, _, err := c.ReadMessage()
				if !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("client read: %v, want the RST mirrored (connection reset)", err)
				}
				c.Close()
				r := oneRecord(t, p)
				checkEnd(t, r, endWant{record.VerdictAbnormalUp, record.SideUpstream, record.HowReset, closeCode(1006), closeCode(1006), true})
			})

			t.Run("client-abort", func(t *testing.T) {
				upErr := make(chan error, 1)
				p, c := helloThroughProxy(t, tlsOn, upstreamReadErr(upErr))
				c.Close() // TCP close, no close frame
				select {
				case err := <-upErr:
					if !websocket.IsCloseError(err, websocket.CloseAbnormalClosure) {
						t.Errorf("upstream reports %v, want 1006", err)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("upstream never saw the client's end")
				}
				r := oneRecord(t, p)
				checkEnd(t, r, endWant{record.VerdictAbnormalClient, record.SideClient, record.HowEOF, closeCode(1006), closeCode(1006), true})
			})

			t.Run("client-reset", func(t *testing.T) {
				upErr := make(chan error, 1)
				p, c := helloThroughProxy(t, tlsOn, upstreamReadErr(upErr))
				// Reset the TCP connection itself: closing the TLS conn would
				// send close_notify first.
				tcp := tcpOf(c.NetConn())
				tcp.SetLinger(0)
				tcp.Close()
				select {
				case err := <-upErr:
					if !errors.Is(err, syscall.ECONNRESET) {
						t.Errorf("upstream reports %v, want the RST mirrored", err)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("upstream never saw the client's end")
				}
				r := oneRecord(t, p)
				checkEnd(t, r, endWant{record.VerdictAbnormalClient, record.SideClient, record.HowReset, closeCode(1006), closeCode(1006), true})
			})

		})
	}

	t.Run("client-close-upstream-silent", func(t *testing.T) {
		// An upstream that reads the client's close, never answers it and
		// drops the TCP connection: the client never gets a close frame.
		up := rawServer(t, func(c *rawConn) {
			_, hdr, err := c.readRequest()
			if err != nil {
				return
			}
			c.Write([]byte(response101(hdr.Get("Sec-WebSocket-Key"))))
			for {
				b0, _, _, err := c.readFrame()
				if err != nil || b0&0x0f == 8 {
					break
				}
			}
			time.Sleep(100 * time.Millisecond)
		})
		p := startTestProxy(t, "ws://"+up, false, nil)
		c, _, err := p.dialer().Dial(p.url("/"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"))
		if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseAbnormalClosure) {
			t.Errorf("client: %v, want 1006", err)
		}
		c.Close()
		r := oneRecord(t, p)
		checkEnd(t, r, endWant{record.VerdictClosedClient, record.SideClient, record.HowEOF, closeCode(1006), closeCode(1000), true})
	})

	t.Run("proxy-shutdown", func(t *testing.T) {
		p, c := helloThroughProxy(t, false, echo)
		recs := p.records() // shuts the proxy down with the session open
		if len(recs) != 1 {
			t.Fatalf("%d records", len(recs))
		}
		checkEnd(t, &recs[0], endWant{record.VerdictShutdown, record.SideProxy, record.HowShutdown, closeCode(1006), closeCode(1006), true})
		if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseAbnormalClosure) {
			t.Errorf("client after shutdown: %v, want 1006", err)
		}
	})

	t.Run("upstream-fin-then-shutdown", func(t *testing.T) {
		// The upstream drops the session; the client reads the FIN but keeps
		// its side open (a load tool thread that is not reading) until the
		// proxy stops. The upstream's drop, not the shutdown, ended it.
		upURL, _ := wsServer(t, false, func(c *websocket.Conn) { c.NetConn().Close() })
		p := startTestProxy(t, upURL, false, nil)
		rc := rawUpgraded(t, p, "/")
		rc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := io.Copy(io.Discard, rc.br); n != 0 || err != nil {
			t.Fatalf("want the upstream's FIN: %d %v", n, err)
		}
		recs := p.records() // shutdown with the client's side still open
		if len(recs) != 1 {
			t.Fatalf("%d records", len(recs))
		}
		checkEnd(t, &recs[0], endWant{record.VerdictAbnormalUp, record.SideUpstream, record.HowEOF, closeCode(1006), closeCode(1006), true})
	})

	t.Run("close-handshake-then-shutdown", func(t *testing.T) {
		// Close frames both ways, but neither side has closed TCP yet when
		// the proxy stops: the session is clean (docs/records.md, "Verdicts").
		up := rawServer(t, func(c *rawConn) {
			_, hdr, err := c.readRequest()
			if err != nil {
				return
			}
			c.Write([]byte(response101(hdr.Get("Sec-WebSocket-Key"))))
			if b0, pl, _, err := c.readFrame(); err == nil && b0&0x0f == 8 {
				c.Write(rawFrame(true, 0, 8, false, pl))
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.Copy(io.Discard, c.br)
		})
		p := startTestProxy(t, "ws://"+up, false, nil)
		rc := rawUpgraded(t, p, "/")
		rc.Write(rawFrame(true, 0, 8, true, []byte{0x03, 0xe8}))
		if b0, _, _, err := rc.readFrame(); err != nil || b0 != 0x88 {
			t.Fatalf("close: %#x %v", b0, err)
		}
		recs := p.records()
		if len(recs) != 1 {
			t.Fatalf("%d records", len(recs))
		}
		checkEnd(t, &recs[0], endWant{record.VerdictClean, record.SideClient, record.HowCloseHandshake, closeCode(1000), closeCode(1000), false})
	})

	t.Run("upstream-429", func(t *testing.T) {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"error":"too many sessions for this organisation"}`)
		}))
		defer ts.Close()
		p := startTestProxy(t, "ws"+strings.TrimPrefix(ts.URL, "http"), false, nil)
		c, resp, err := p.dialer().Dial(p.url("/chat"), nil)
		if err == nil {
			c.Close()
			t.Fatal("dial succeeded through a 429")
		}
		if resp == nil || resp.StatusCode != 429 {
			t.Fatalf("client got %v, %v; want 429", resp, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if string(body) != `{"error":"too many sessions for this organisation"}` || resp.Header.Get("Retry-After") != "7" {
			t.Errorf("client got body %q, Retry-After %q", body, resp.Header.Get("Retry-After"))
		}
		r := oneRecord(t, p)
		checkEnd(t, r, endWant{record.VerdictRejected, record.SideUpstream, record.HowHandshakeRejects, nil, nil, false})
		if r.Handshake.Status != 429 {
			t.Errorf("handshake.status %d", r.Handshake.Status)
		}
	})

	t.Run("upstream-503-chunked", func(t *testing.T) {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Why")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "maintenance, ")
			w.(http.Flusher).Flush()
			io.WriteString(w, "back soon")
			w.Header().Set("X-Why", "deploy")
		}))
		defer ts.Close()
		p := startTestProxy(t, "ws"+strings.TrimPrefix(ts.URL, "http"), false, nil)
		rc := p.rawClient(t)
		req, _ := rawUpgradeRequest(p.srv.Addr().String(), "/chat")
		rc.Write([]byte(req))
		rc.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(rc.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		if resp.StatusCode != 503 || string(body) != "maintenance, back soon" || err != nil || resp.Trailer.Get("X-Why") != "deploy" {
			t.Errorf("client got %d %q %v trailer %v", resp.StatusCode, body, err, resp.Trailer)
		}
		r := oneRecord(t, p)
		checkEnd(t, r, endWant{record.VerdictRejected, record.SideUpstream, record.HowHandshakeRejects, nil, nil, false})
	})

	t.Run("upstream-unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := ln.Addr().String()
		ln.Close()
		p := startTestProxy(t, "ws://"+closed, false, nil)
		c, resp, err := p.dialer().Dial(p.url("/"), nil)
		if err == nil {
			c.Close()
			t.Fatal("dial succeeded to a closed port")
		}
		if resp == nil || resp.StatusCode != 502 {
			t.Fatalf("client got %v, %v; want 502", resp, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), "refused") {
			t.Errorf("502 body %q does not give the reason", body)
		}
		r := oneRecord(t, p)
		checkEnd(t, r, endWant{record.VerdictUnreachable, record.SideUpstream, record.HowDialError, nil, nil, false})
	})

	t.Run("upstream-cert-rejected", func(t *testing.T) {
		upURL, _ := wsServer(t, true, echo)
		p := startTestProxy(t, upURL, false, nil) // no pool, no InsecureUpstream
		c, resp, err := p.dialer().Dial(p.url("/"), nil)
		if err == nil {
			c.Close()
			t.Fatal("dial succeeded to an untrusted upstream")
		}
		if resp == nil || resp.StatusCode != 502 {
			t.Fatalf("client got %v, %v; want 502", resp, err)
		}
		r := oneRecord(t, p)
		checkEnd(t, r, endWant{record.VerdictTLSUpstream, record.SideUpstream, record.HowTLSError, nil, nil, false})
		if r.TLS.Upstream == nil || r.TLS.Upstream.Error == "" {
			t.Errorf("tls.upstream %+v, want the verification error", r.TLS.Upstream)
		}
	})

	t.Run("client-rejects-wstap-cert", func(t *testing.T) {
		upURL, _ := wsServer(t, false, echo)
		p := startTestProxy(t, upURL, true, nil)
		d := p.dialer()
		d.TLSClientConfig = &tls.Config{} // system roots: wstap's CA is not among them
		c, _, err := d.Dial(p.url("/"), nil)
		if err == nil {
			c.Close()
			t.Fatal("client accepted wstap's certificate without its CA")
		}
		r := oneRecord(t, p)
		checkEnd(t, r, endWant{record.VerdictTLSClient, record.SideClient, record.HowTLSError, nil, nil, false})
		if r.TLS.Client == nil || r.TLS.Client.Alert == "" {
			t.Errorf("tls.client %+v, want the client's alert", r.TLS.Client)
		}
	})
}
