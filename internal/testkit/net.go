package testkit

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// FreeAddr returns a loopback address nobody listens on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// WaitListening waits up to 10 s until addr accepts a TCP connection, and
// fails the test otherwise; output (a process's stderr, say) is then shown.
func WaitListening(t testing.TB, addr string, output ...fmt.Stringer) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
	}
	var b strings.Builder
	for _, o := range output {
		fmt.Fprintf(&b, "; output:\n%s", o)
	}
	t.Fatalf("nothing listens on %s after 10s%s", addr, b.String())
}

// SyncBuffer is a bytes.Buffer that a process or goroutine may write while
// the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Serve accepts connections on ln and runs handle on each in its own
// goroutine, closing the connection when handle returns. When the test ends
// it closes ln and the connections still open and waits for every handle.
func Serve(t testing.TB, ln net.Listener, handle func(c net.Conn)) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	conns := map[net.Conn]struct{}{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					c.Close()
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
				}()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// Listen listens on a free port of the loopback address ip ("127.0.0.1",
// "127.0.0.2"...) and serves each connection with handle (see Serve). It
// skips the test when ip cannot be listened on.
func Listen(t testing.TB, ip string, handle func(c net.Conn)) (addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	Serve(t, ln, handle)
	return ln.Addr().String()
}

// ConnectProxy is a minimal HTTP CONNECT proxy on loopback, closed when the
// test ends: it answers anything but CONNECT with 400, refuses hosts ending
// in .invalid with 403, an unreachable target with 502, and tunnels the
// rest, half-closes passed on. tunnels counts the tunnels it opened.
func ConnectProxy(t testing.TB) (addr string, tunnels func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	ups := map[net.Conn]struct{}{}
	n := 0
	Serve(t, ln, func(c net.Conn) {
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil || req.Method != http.MethodConnect {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			return
		}
		if strings.HasSuffix(req.URL.Hostname(), ".invalid") {
			io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
			return
		}
		up, err := net.Dial("tcp", req.Host)
		if err != nil {
			io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
			return
		}
		defer up.Close()
		mu.Lock()
		ups[up] = struct{}{}
		n++
		mu.Unlock()
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		done := make(chan struct{})
		go func() { io.Copy(up, br); up.(*net.TCPConn).CloseWrite(); close(done) }()
		io.Copy(c, up)
		c.(*net.TCPConn).CloseWrite()
		<-done
	})
	// Registered after Serve's, so it runs first: the tunnels' upstream legs
	// close, then Serve waits for the tunnels.
	t.Cleanup(func() {
		mu.Lock()
		for up := range ups {
			up.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}
