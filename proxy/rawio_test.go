package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair is a loopback TCP connection: ours and the peer's end.
func tcpPair(t *testing.T) (ours *net.TCPConn, peer net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer = <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	return c.(*net.TCPConn), peer
}

// TestRawIOWrites: 8 MiB written through rawIO to a peer that reads slowly
// (the socket fills, the write waits for the poller and goes on after
// partial writes) arrive whole and in order; a 5-byte write is one write.
func TestRawIOWrites(t *testing.T) {
	ours, peer := tcpPair(t)
	r := newRawIO(ours)
	if r == nil {
		t.Fatal("newRawIO(*net.TCPConn) = nil")
	}
	want := make([]byte, 8<<20)
	for i := range want {
		want[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	go func() {
		var b bytes.Buffer
		buf := make([]byte, 4096)
		for {
			n, err := peer.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				got <- b.Bytes()
				return
			}
			if b.Len() < 1<<20 {
				time.Sleep(time.Millisecond) // let the socket fill
			}
		}
	}()
	if n, err := r.Write(want); n != len(want) || err != nil {
		t.Fatalf("Write of 8 MiB: %d, %v", n, err)
	}
	if n, err := r.Write([]byte("tail.")); n != 5 || err != nil {
		t.Fatalf("Write of 5 bytes: %d, %v", n, err)
	}
	ours.CloseWrite()
	if b := <-got; !bytes.Equal(b, append(want, "tail."...)) {
		t.Errorf("the peer read %d bytes, not the %d written in order", len(b), len(want)+5)
	}
}

// TestRawIOErrorsLikeNetConn: rawIO's reads return what net.Conn's would,
// error text included: data then io.EOF after the peer's FIN, a timeout
// past the deadline, a reset after the peer's RST, net.ErrClosed after
// Close; writes after the RST fail as a reset too.
func TestRawIOErrorsLikeNetConn(t *testing.T) {
	ours, peer := tcpPair(t)
	r := newRawIO(ours)
	buf := make([]byte, 64)

	ours.SetReadDeadline(time.Now().Add(-time.Second))
	_, rawErr := r.Read(buf)
	_, netErr := ours.Read(buf)
	var ne net.Error
	if !errors.Is(rawErr, os.ErrDeadlineExceeded) || !errors.As(rawErr, &ne) || !ne.Timeout() || rawErr.Error() != netErr.Error() {
		t.Errorf("past the deadline: %v, want %v", rawErr, netErr)
	}
	ours.SetReadDeadline(time.Time{})

	peer.Write([]byte("hello"))
	if n, err := r.Read(buf); n != 5 || err != nil || string(buf[:5]) != "hello" {
		t.Errorf("Read: %d %q, %v", n, buf[:n], err)
	}
	peer.(*net.TCPConn).CloseWrite()
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("after the peer's FIN: %d, %v (want io.EOF)", n, err)
	}

	ours2, peer2 := tcpPair(t)
	r2 := newRawIO(ours2)
	peer2.(*net.TCPConn).SetLinger(0)
	peer2.Close()
	if _, err := r2.Read(buf); !isReset(err) || !bytes.HasPrefix([]byte(err.Error()), []byte("read tcp ")) {
		t.Errorf("after the peer's RST: %v, want a reset from read", err)
	}
	if _, err := r2.Write([]byte("x")); !isReset(err) {
		t.Errorf("writing after the peer's RST: %v, want a reset", err)
	}

	ours.Close()
	_, rawErr = r.Read(buf)
	_, netErr = ours.Read(buf)
	if !errors.Is(rawErr, net.ErrClosed) || rawErr.Error() != netErr.Error() {
		t.Errorf("after Close: %v, want %v", rawErr, netErr)
	}
}

// TestRawIOAllocs: a read and a write allocate nothing.
func TestRawIOAllocs(t *testing.T) {
	ours, peer := tcpPair(t)
	r := newRawIO(ours)
	msg, buf, pbuf := []byte("0123456789abcdef"), make([]byte, 64), make([]byte, 64)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := r.Write(msg); err != nil {
			t.Fatal(err)
		}
		io.ReadFull(peer, pbuf[:len(msg)])
		peer.Write(msg)
		if _, err := r.Read(buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("a raw read and write: %.1f allocations, want 0", allocs)
	}
}
