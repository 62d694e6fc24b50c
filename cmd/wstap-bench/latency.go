package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	mrand "math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/wstap/wstap/internal/load"
)

// latConfig is the latency work: Sessions sessions, each sending a Size-byte
// text message every Every for Duration; the echo's round trip is timed.
type latConfig struct {
	Sessions, Size  int
	Every, Duration time.Duration
	OpenLimit       time.Duration // bound on opening all sessions
	Dialers         int           // sessions opened in parallel
}

// LatResult is what the latency work measured. Durations are microseconds.
type LatResult struct {
	Sessions int            `json:"sessions"`
	Opened   int            `json:"opened"`
	Failed   map[string]int `json:"failed,omitempty"`
	Sent     int64          `json:"sent"`
	Echoed   int64          `json:"echoed"`
	P50us    float64        `json:"p50_us"`
	P99us    float64        `json:"p99_us"`
	P999us   float64        `json:"p999_us"`
	MaxUs    float64        `json:"max_us"`
	Error    string         `json:"error,omitempty"`
}

type latSession struct {
	c   net.Conn
	br  *bufio.Reader
	rtt []time.Duration
}

// latency opens the sessions, runs the message rhythm and collects RTTs.
func latency(ctx context.Context, d *dialer, cfg latConfig) LatResult {
	res := LatResult{Sessions: cfg.Sessions, Failed: map[string]int{}}
	sessions, failed := openMany(ctx, d, cfg.Sessions, cfg.Dialers, cfg.OpenLimit)
	res.Failed = failed
	res.Opened = len(sessions)
	if len(sessions) == 0 {
		res.Error = "no session opened"
		return res
	}
	base := time.Now()
	var sent atomic.Int64
	var wg sync.WaitGroup
	sendCtx, stopSend := context.WithTimeout(ctx, cfg.Duration)
	defer stopSend()
	ls := make([]*latSession, len(sessions))
	for i, s := range sessions {
		l := &latSession{c: s.c, br: s.br}
		ls[i] = l
		wg.Add(1)
		go func() { defer wg.Done(); latRead(l, base) }()
		go latSend(sendCtx, l.c, cfg, base, &sent)
	}
	<-sendCtx.Done()
	sleepCtx(ctx, 2*time.Second) // let the last echoes come back
	for _, l := range ls {
		l.c.Close()
	}
	wg.Wait()
	var all []time.Duration
	for _, l := range ls {
		all = append(all, l.rtt...)
	}
	slices.Sort(all)
	res.Sent, res.Echoed = sent.Load(), int64(len(all))
	if len(all) > 0 {
		res.P50us, res.P99us, res.P999us = us(pct(all, .50)), us(pct(all, .99)), us(pct(all, .999))
		res.MaxUs = us(all[len(all)-1])
	} else {
		res.Error = "no message echoed"
	}
	return res
}

// latSend sends one stamped message every cfg.Every, starting at a random
// phase so that the sessions' messages spread over the interval.
func latSend(ctx context.Context, c net.Conn, cfg latConfig, base time.Time, sent *atomic.Int64) {
	mask := load.Mask()
	// Text, so proxies that check UTF-8 (mitmproxy) pass it: a hex stamp,
	// then filler.
	payload := bytes.Repeat([]byte("x"), max(cfg.Size, stampLen))
	frame := make([]byte, 0, cfg.Size+14)
	sleepCtx(ctx, time.Duration(mrand.Int64N(int64(cfg.Every))))
	t := time.NewTicker(cfg.Every)
	defer t.Stop()
	for ctx.Err() == nil {
		putStamp(payload, time.Since(base))
		frame = load.AppendClientFrame(frame[:0], ws.OpText, mask, payload)
		if _, err := c.Write(frame); err != nil {
			return
		}
		sent.Add(1)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// latRead times every echoed message by the stamp it carries.
func latRead(l *latSession, base time.Time) {
	var stamp [stampLen]byte
	for {
		h, err := readHead(l.br)
		if err != nil {
			return
		}
		n := int(h.length)
		if h.op == ws.OpText && n >= stampLen {
			if _, err := io.ReadFull(l.br, stamp[:]); err != nil {
				return
			}
			if sentAt, ok := readStamp(stamp[:]); ok {
				l.rtt = append(l.rtt, time.Since(base)-sentAt)
			}
			n -= stampLen
		}
		if _, err := l.br.Discard(n); err != nil {
			return
		}
	}
}

type openSession struct {
	c  net.Conn
	br *bufio.Reader
}

// openMany opens n sessions with workers dialing in parallel, within limit;
// failures are counted by reason.
func openMany(ctx context.Context, d *dialer, n, workers int, limit time.Duration) ([]openSession, map[string]int) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var mu sync.Mutex
	var out []openSession
	failed := map[string]int{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				c, br, err := d.dial(ctx, i)
				mu.Lock()
				if err != nil {
					failed[failReason(err)]++
				} else {
					out = append(out, openSession{c, br})
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if rest := n - len(out) - total(failed); rest > 0 {
		failed["not-attempted-in-time"] += rest
	}
	return out, failed
}

func total(m map[string]int) int {
	t := 0
	for _, v := range m {
		t += v
	}
	return t
}

func pct(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func sortDurations(d []time.Duration) { slices.Sort(d) }

// stampLen is the hex send time at the start of each latency message.
const stampLen = 16

func putStamp(p []byte, d time.Duration) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(d))
	hex.Encode(p[:stampLen], b[:])
}

func readStamp(p []byte) (time.Duration, bool) {
	var b [8]byte
	if _, err := hex.Decode(b[:], p[:stampLen]); err != nil {
		return 0, false
	}
	return time.Duration(binary.BigEndian.Uint64(b[:])), true
}
