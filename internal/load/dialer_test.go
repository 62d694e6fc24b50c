package load

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wstap/wstap/internal/platform"
)

func TestDialerOpensAndEchoes(t *testing.T) {
	p := startPlatform(t, platform.Config{TLS: true})
	d, err := NewDialer(Config{URL: p.URL(), RootCAs: p.CertPool(), Subprotocol: platform.Subprotocol,
		LocalAddrs: []string{"127.0.0.2", "127.0.0.3"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		conn, early, proto, err := d.Dial(context.Background(), i)
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		defer conn.Close()
		if proto != platform.Subprotocol {
			t.Errorf("session %d: subprotocol %q, want %q", i, proto, platform.Subprotocol)
		}
		// conn is the TLS conn; its LocalAddr is the TCP source address.
		if want := []string{"127.0.0.2", "127.0.0.3"}[i]; conn.LocalAddr().(*net.TCPAddr).IP.String() != want {
			t.Errorf("session %d: source %v, want %s", i, conn.LocalAddr(), want)
		}
		conn.Write(AppendClientFrame(nil, ws.OpText, Mask(), []byte("hello")))
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		f, err := ws.ReadFrame(NewReader(conn, early, 512))
		if err != nil || string(f.Payload) != "hello" {
			t.Fatalf("session %d: echo %q, %v", i, f.Payload, err)
		}
	}
}

func TestDialerFailReasons(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	plain := startPlatform(t, platform.Config{})
	for _, tc := range []struct{ url, want string }{
		{"ws://" + addr + "/", FailDial},
		{"wss://" + plain.Addr() + "/", FailTLS},
	} {
		d, err := NewDialer(Config{URL: tc.url, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		_, _, _, err = d.Dial(context.Background(), 0)
		if got := FailReason(err); got != tc.want {
			t.Errorf("%s: reason %q (%v), want %q", tc.url, got, err, tc.want)
		}
	}
	if got := FailReason(context.Canceled); got != "" {
		t.Errorf("reason of an error not from Dial: %q, want none", got)
	}
}
