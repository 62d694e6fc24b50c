package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/wstap/wstap/internal/load"
)

// tpConfig is one throughput work: Sessions sessions, each keeping InFlight
// binary messages of Size bytes in flight for Duration after Warmup.
type tpConfig struct {
	Sessions, Size, InFlight int
	Warmup, Duration         time.Duration
}

// TPResult is what a throughput work measured.
type TPResult struct {
	Sessions    int     `json:"sessions"`
	Opened      int     `json:"opened"`
	MessageSize int     `json:"message_size"`
	InFlight    int     `json:"in_flight"`
	Seconds     float64 `json:"seconds"`
	Messages    int64   `json:"messages"`
	MsgPerSec   float64 `json:"messages_per_s"`
	MBPerSec    float64 `json:"mb_per_s"` // payload bytes echoed back, 10^6 per second
	// ProxyCPUus is the proxy's CPU time (user+system, all its processes)
	// per echoed message during the measured time: what the proxy costs,
	// less noisy than rates on a shared machine. 0 for direct.
	ProxyCPUus float64 `json:"proxy_cpu_us_per_message,omitempty"`
	Error      string  `json:"error,omitempty"`
}

// throughput runs a pipelining client: per session a writer keeps InFlight
// messages outstanding, writing every message it may send in one write (its
// frames are built and masked once), and a reader counts echoed messages and
// hands their slots back.
func throughput(ctx context.Context, d *dialer, cfg tpConfig, cpu func() (float64, error)) TPResult {
	res := TPResult{Sessions: cfg.Sessions, MessageSize: cfg.Size, InFlight: cfg.InFlight}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var echoed atomic.Int64
	var wg sync.WaitGroup
	var conns []net.Conn
	var firstErr error
	for i := range cfg.Sessions {
		c, br, err := d.dial(ctx, i)
		if err != nil {
			firstErr = fmt.Errorf("opening session %d: %w", i, err)
			break
		}
		conns = append(conns, c)
		wg.Add(2)
		slots := make(chan struct{}, cfg.InFlight)
		go func() { defer wg.Done(); tpWrite(ctx, c, slots, cfg) }()
		go func() { defer wg.Done(); tpRead(br, slots, &echoed) }()
	}
	res.Opened = len(conns)
	if firstErr == nil {
		sleepCtx(ctx, cfg.Warmup)
		c0 := cpuOf(cpu)
		n0, t0 := echoed.Load(), time.Now()
		sleepCtx(ctx, cfg.Duration)
		n1, t1 := echoed.Load(), time.Now()
		if c1 := cpuOf(cpu); c1 > 0 && n1 > n0 {
			res.ProxyCPUus = (c1 - c0) * 1e6 / float64(n1-n0)
		}
		res.Seconds = t1.Sub(t0).Seconds()
		res.Messages = n1 - n0
		res.MsgPerSec = float64(res.Messages) / res.Seconds
		res.MBPerSec = res.MsgPerSec * float64(cfg.Size) / 1e6
		if res.Messages == 0 {
			firstErr = fmt.Errorf("no message echoed in %s", cfg.Duration)
		}
	}
	if firstErr != nil {
		res.Error = firstErr.Error()
	}
	cancel()
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	return res
}

// tpWrite sends as many prebuilt frames as there are free slots, in one write.
func tpWrite(ctx context.Context, c net.Conn, slots chan struct{}, cfg tpConfig) {
	payload := make([]byte, cfg.Size)
	rand.Read(payload)
	frame := load.AppendClientFrame(nil, ws.OpBinary, load.Mask(), payload)
	batch := make([]byte, 0, len(frame)*cfg.InFlight)
	for range cfg.InFlight {
		batch = append(batch, frame...)
	}
	for range cfg.InFlight {
		slots <- struct{}{}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-slots:
		}
		n := 1
	more:
		for n < cfg.InFlight {
			select {
			case <-slots:
				n++
			default:
				break more
			}
		}
		if _, err := c.Write(batch[:n*len(frame)]); err != nil {
			return
		}
	}
}

// tpRead counts whole echoed messages and frees a slot for each.
func tpRead(br *bufio.Reader, slots chan struct{}, echoed *atomic.Int64) {
	for {
		h, err := readHead(br)
		if err != nil {
			return
		}
		if _, err := br.Discard(int(h.length)); err != nil {
			return
		}
		if h.fin && (h.op == ws.OpBinary || h.op == ws.OpText || h.op == ws.OpContinuation) {
			echoed.Add(1)
			select {
			case slots <- struct{}{}:
			default:
			}
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func cpuOf(cpu func() (float64, error)) float64 {
	if cpu == nil {
		return 0
	}
	v, _ := cpu()
	return v
}
