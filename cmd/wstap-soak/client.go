package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/wstap/wstap/internal/load"
	"github.com/wstap/wstap/internal/platform"
)

// session is what one client session did, as the client saw it.
type session struct {
	Path      string // /soak/<slot>/<gen>: the key to its record
	Fault     string // "" or one of faultKinds
	Connected bool   // TCP connected, so the proxy saw it
	Opened    bool   // got a 101
	DialErr   string
	Wrote     int64  // wire bytes of the frames it wrote
	Read      int64  // wire bytes of the complete frames it read
	Messages  int64  // data frames written (faults included)
	Pings     int64  // pings written
	GotClose  bool   // a close frame came from the proxy
	Ended     string // how it ended: clean, eof, reset, aborted, error
	Err       string // the error that ended it, if any

	out []byte // the frame being written
}

// clientConfig is the behaviour of every session.
type clientConfig struct {
	proxy        string // host:port
	ping         time.Duration
	messageEvery time.Duration
	messageSize  int
	faults       float64  // probability that a session carries a fault
	sources      []string // source addresses, taken in turn by slot
}

// fleet runs the sessions of every slot and keeps them.
type fleet struct {
	cfg  clientConfig
	open atomic.Int64 // sessions open now
	mu   sync.Mutex
	all  []*session
}

// runSlot keeps one session open from start to end: a session that a fault
// ended is replaced while more than 10 s remain. At most maxGens sessions
// per slot.
func (f *fleet) runSlot(ctx context.Context, slot int, start, end time.Time) {
	const maxGens = 50
	select {
	case <-time.After(time.Until(start)):
	case <-ctx.Done():
		return
	}
	for gen := 0; gen < maxGens && time.Until(end) > 10*time.Second && ctx.Err() == nil; gen++ {
		s := &session{Path: fmt.Sprintf("/soak/%d/%d", slot, gen)}
		if rand.Float64() < f.cfg.faults {
			s.Fault = faultKinds[rand.IntN(len(faultKinds))]
		}
		f.mu.Lock()
		f.all = append(f.all, s)
		f.mu.Unlock()
		f.run(ctx, s, slot, end)
		if !s.Connected {
			time.Sleep(time.Second)
		}
		if s.Fault == "" || s.Fault == faultMalformed {
			if s.Ended != "clean" {
				time.Sleep(time.Second) // an unexpected end: replace it, not at once
			}
		}
	}
}

// dial opens session s through the proxy from the slot's source address
// (load.Dialer, the client of 'wstap load'); nil when it did not open.
func (f *fleet) dial(ctx context.Context, s *session, slot int) (net.Conn, *bufio.Reader) {
	d, err := load.NewDialer(load.Config{URL: "ws://" + f.cfg.proxy + s.Path, LocalAddrs: f.cfg.sources, Timeout: 20 * time.Second})
	if err != nil {
		s.DialErr = err.Error()
		return nil, nil
	}
	conn, early, _, err := d.Dial(ctx, slot)
	// Every failure but the TCP connect's own came after the proxy saw the
	// connection.
	s.Connected = err == nil || load.FailReason(err) != load.FailDial
	if err != nil {
		s.DialErr = err.Error()
		return nil, nil
	}
	s.Opened = true
	return conn, load.NewReader(conn, early, 1024)
}

// run dials one session and holds it until end or its fault.
func (f *fleet) run(ctx context.Context, s *session, slot int, end time.Time) {
	conn, br := f.dial(ctx, s, slot)
	if conn == nil {
		return
	}
	defer conn.Close()
	f.open.Add(1)
	defer f.open.Add(-1)

	var read atomic.Int64
	var gotClose atomic.Bool
	readDone := make(chan error, 1)
	go func() { readDone <- readFrames(br, &read, &gotClose) }()

	// The fault comes at a random moment of the session's remaining life.
	var faultAt <-chan time.Time
	if s.Fault != "" {
		faultAt = time.After(time.Duration(rand.Int64N(max(int64(time.Until(end)-5*time.Second), 1))))
	}
	msg := make([]byte, f.cfg.messageSize)
	ping := time.NewTicker(f.cfg.ping)
	defer ping.Stop()
	message := time.NewTicker(f.cfg.messageEvery)
	defer message.Stop()
	endAt := time.After(time.Until(end))
	var werr, rerr error
	readEnded := false
loop:
	for {
		select {
		case <-ping.C:
			s.Pings++
			werr = s.write(conn, ws.OpPing, []byte("soakping"))
		case <-message.C:
			s.Messages++
			fillText(msg)
			werr = s.write(conn, ws.OpText, msg)
		case <-faultAt:
			var stop bool
			if werr, stop = s.fault(conn); stop {
				rerr = <-readDone
				readEnded = true
				break loop
			}
		case <-endAt:
			werr = s.write(conn, ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, "soak over"))
			conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			rerr = <-readDone
			readEnded = true
			break loop
		case rerr = <-readDone:
			readEnded = true
			break loop
		case <-ctx.Done():
			break loop
		}
		if werr != nil {
			break
		}
	}
	if !readEnded {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if e := <-readDone; rerr == nil {
			rerr = e
		}
	}
	s.Read, s.GotClose = read.Load(), gotClose.Load()
	if s.Ended == "" {
		s.Ended = endedHow(s.GotClose, werr, rerr)
	}
	if err := errors.Join(werr, rerr); err != nil && s.Ended != "clean" {
		s.Err = err.Error()
	}
}

// fault carries out the session's fault; stop says the session writes
// nothing more and waits for the connection to end.
func (s *session) fault(conn net.Conn) (werr error, stop bool) {
	if s.Fault == faultAbort {
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
		s.Ended = "aborted"
		return nil, true
	}
	s.Messages++
	werr = s.write(conn, ws.OpText, []byte(platform.FaultPrefix+s.Fault))
	if s.Fault == faultMalformed {
		return werr, false
	}
	// Write nothing more: what reaches the upstream is exactly what the
	// client wrote.
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	return werr, true
}

// write sends one masked frame in a single write and counts the bytes that
// left.
func (s *session) write(c net.Conn, op ws.OpCode, payload []byte) error {
	s.out = load.AppendClientFrame(s.out[:0], op, load.Mask(), payload)
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Write(s.out)
	s.Wrote += int64(n)
	return err
}

// readFrames reads frames until the connection ends, counting the wire
// bytes of every complete frame. After a close frame it reads on to EOF.
func readFrames(br *bufio.Reader, read *atomic.Int64, gotClose *atomic.Bool) error {
	payload := make([]byte, 0, 1024)
	for {
		h, err := ws.ReadHeader(br)
		if err != nil {
			return err
		}
		if h.Length > 64<<10 {
			return fmt.Errorf("frame of %d bytes: larger than the soak sends", h.Length)
		}
		payload = payload[:h.Length]
		if _, err := io.ReadFull(br, payload); err != nil {
			return err
		}
		read.Add(int64(ws.HeaderSize(h)) + h.Length)
		if h.OpCode == ws.OpClose {
			gotClose.Store(true)
		}
	}
}

// endedHow names how a session that was not aborted ended: clean after a
// close frame, otherwise load.How of the error that ended it.
func endedHow(gotClose bool, werr, rerr error) string {
	switch {
	case gotClose && (rerr == nil || errors.Is(rerr, io.EOF)) && werr == nil:
		return "clean"
	case werr == nil && rerr == nil:
		return "eof"
	}
	return load.How(errors.Join(werr, rerr))
}

// fillText fills msg with printable bytes (a text message must be UTF-8).
func fillText(msg []byte) {
	for i := range msg {
		msg[i] = 'a' + byte(rand.IntN(26))
	}
}
