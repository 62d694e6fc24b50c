package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws"
)

// Faults a session can ask for. The client sends the text message
// faultPrefix+kind and the upstream acts on it; "abort" is the client's own.
const (
	faultRST       = "rst"       // upstream resets its TCP connection
	faultFIN       = "fin"       // upstream closes TCP without a close frame
	faultMalformed = "malformed" // upstream sends a reserved-opcode or RSV1 frame, then goes on
	faultAbort     = "abort"     // client resets its TCP connection without a close frame
	faultPrefix    = "FAULT "
)

var faultKinds = []string{faultRST, faultFIN, faultMalformed, faultAbort}

// upstreamIdle bounds how long the upstream waits for a frame; sessions
// send one at least every ping interval, far below it.
const upstreamIdle = 5 * time.Minute

// runUpstream is the child process ('wstap-soak upstream ADDR'): a gobwas/ws
// echo server that answers pings, echoes data frames, answers close frames
// and carries out faults. It prints "listening ADDR" once it listens and
// runs until its stdin closes (the parent ended).
func runUpstream(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("upstream: listening on %s: %w", addr, err)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		ln.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			fmt.Fprintf(os.Stderr, "upstream: accept: %v\n", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			if err := serveUpstream(c); err != nil && !isEnd(err) {
				fmt.Fprintf(os.Stderr, "upstream: session from %s: %v\n", c.RemoteAddr(), err)
			}
		}()
	}
}

// serveUpstream runs one upstream session until it ends.
func serveUpstream(c net.Conn) error {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := ws.Upgrade(c); err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	c.SetDeadline(time.Time{})
	br := bufio.NewReaderSize(c, 1024)
	var out bytes.Buffer
	payload := make([]byte, 0, 256)
	for {
		c.SetReadDeadline(time.Now().Add(upstreamIdle))
		h, err := ws.ReadHeader(br)
		if err != nil {
			return err
		}
		if h.Length > 64<<10 {
			return fmt.Errorf("frame of %d bytes: larger than the soak sends", h.Length)
		}
		payload = payload[:h.Length]
		if _, err := io.ReadFull(br, payload); err != nil {
			return fmt.Errorf("reading a %d-byte payload: %w", h.Length, err)
		}
		if h.Masked {
			ws.Cipher(payload, h.Mask, 0)
		}
		out.Reset()
		switch h.OpCode {
		case ws.OpPing:
			ws.WriteFrame(&out, ws.NewPongFrame(payload))
		case ws.OpPong:
			continue
		case ws.OpClose:
			ws.WriteFrame(&out, ws.NewCloseFrame(payload))
			c.Write(out.Bytes())
			return nil
		case ws.OpText, ws.OpBinary:
			if kind, ok := strings.CutPrefix(string(payload), faultPrefix); ok {
				if done := upstreamFault(c, kind); done {
					return nil
				}
				continue
			}
			ws.WriteFrame(&out, ws.NewFrame(h.OpCode, h.Fin, payload))
		default:
			continue
		}
		if _, err := c.Write(out.Bytes()); err != nil {
			return fmt.Errorf("writing: %w", err)
		}
	}
}

// upstreamFault carries out a fault; done says the session is over.
func upstreamFault(c net.Conn, kind string) (done bool) {
	switch kind {
	case faultRST:
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
		return true
	case faultFIN:
		c.Close()
		return true
	case faultMalformed:
		var out bytes.Buffer
		h := ws.Header{Fin: true, OpCode: ws.OpCode(0x3), Length: 4} // reserved opcode
		if rand.IntN(2) == 0 {
			h = ws.Header{Fin: true, Rsv: ws.Rsv(true, false, false), OpCode: ws.OpText, Length: 4} // RSV1, no extension
		}
		ws.WriteHeader(&out, h)
		out.WriteString("oops")
		c.Write(out.Bytes())
	}
	return false
}

// isEnd is true for the ordinary ways a session's connection ends.
func isEnd(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe") ||
		(errors.As(err, &ne) && ne.Timeout())
}
