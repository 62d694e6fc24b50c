package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/gobwas/ws"
)

// echoMain is the hidden "echo" subcommand: the benchmark's upstream, a wss
// echo server run as its own process so its garbage collection and CPU show
// apart from the client's. Frames are echoed as they arrive (a 16 KiB frame
// streams through), every frame read in one read leaves in one write.
func echoMain(args []string) error {
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	certFile := fs.String("cert", "", "PEM certificate")
	keyFile := fs.String("key", "", "PEM key")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		return fmt.Errorf("echo: loading --cert/--key: %w", err)
	}
	raiseNofile()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("echo: --listen %s: %w", *listen, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
	fmt.Fprintln(os.Stdout, ln.Addr().String())
	for {
		c, err := ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			time.Sleep(10 * time.Millisecond) // EMFILE: keep serving the rest
			continue
		}
		go echoConn(tls.Server(c, cfg))
	}
}

// echoConn upgrades one connection and echoes until close.
func echoConn(c *tls.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReaderSize(c, 16<<10)
	if _, err := (ws.Upgrader{}).Upgrade(struct {
		io.Reader
		io.Writer
	}{br, c}); err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	echoFrames(br, c)
}

// echoFrames turns masked client frames into unmasked server frames: data
// frames and their fragments are echoed, pings answered with pongs, pongs
// dropped, a close echoed and the connection closed after it.
func echoFrames(br *bufio.Reader, w io.Writer) error {
	out := make([]byte, 0, 4<<10)
	flush := func() error {
		if len(out) == 0 {
			return nil
		}
		_, err := w.Write(out)
		out = out[:0]
		return err
	}
	for {
		if br.Buffered() == 0 {
			if err := flush(); err != nil {
				return err
			}
		}
		h, err := readHead(br)
		if err != nil {
			return err
		}
		op, keep := h.op, true
		switch op {
		case ws.OpPing:
			op = ws.OpPong
		case ws.OpPong:
			keep = false
		}
		if keep {
			out = appendHead(out, h.fin, op, nil, int(h.length))
		}
		for off := int64(0); off < h.length; {
			if br.Buffered() == 0 {
				if err := flush(); err != nil {
					return err
				}
				if _, err := br.Peek(1); err != nil {
					return err
				}
			}
			n := min(int64(br.Buffered()), h.length-off)
			p, _ := br.Peek(int(n))
			if keep {
				start := len(out)
				out = append(out, p...)
				if h.masked {
					ws.Cipher(out[start:], h.mask, int(off))
				}
			}
			br.Discard(int(n))
			off += n
			if len(out) >= 256<<10 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if h.op == ws.OpClose {
			return flush()
		}
	}
}
