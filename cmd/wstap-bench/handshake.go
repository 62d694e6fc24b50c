package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/wstap/wstap/internal/load"
)

// HSResult is what the handshake work measured.
type HSResult struct {
	Workers   int            `json:"workers"`
	Seconds   float64        `json:"seconds"`
	Opened    int64          `json:"opened"`
	PerSec    float64        `json:"per_s"`
	Failed    map[string]int `json:"failed,omitempty"`
	P50ms     float64        `json:"p50_ms"`
	P99ms     float64        `json:"p99_ms"`
	FirstFail string         `json:"first_failure,omitempty"`
}

// handshakes opens new wss sessions as fast as workers can for dur: TCP, a
// full TLS handshake (the client keeps no session cache), the upgrade, then a
// close frame and the end of the connection.
func handshakes(ctx context.Context, d *dialer, workers int, dur time.Duration) HSResult {
	res := HSResult{Workers: workers, Failed: map[string]int{}}
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	var opened atomic.Int64
	var seq atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	closeFrame := load.AppendClientFrame(nil, ws.OpClose, load.Mask(), ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
	start := time.Now()
	deadline, _ := ctx.Deadline()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for ctx.Err() == nil {
				t0 := time.Now()
				c, _, err := d.dial(ctx, int(seq.Add(1)))
				if err != nil {
					// At the deadline a dial fails at once, before ctx.Err()
					// says so: those are the end of the work, not failures.
					if ctx.Err() != nil || !time.Now().Before(deadline) {
						break
					}
					mu.Lock()
					res.Failed[failReason(err)]++
					if res.FirstFail == "" {
						res.FirstFail = fmt.Sprintf("at %.1fs, after %s: %v", time.Since(start).Seconds(), time.Since(t0).Round(time.Millisecond), err)
					}
					mu.Unlock()
					continue
				}
				mine = append(mine, time.Since(t0))
				opened.Add(1)
				c.SetWriteDeadline(time.Now().Add(time.Second))
				c.Write(closeFrame)
				c.Close()
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	res.Opened = opened.Load()
	res.PerSec = float64(res.Opened) / res.Seconds
	if len(lat) > 0 {
		sortDurations(lat)
		res.P50ms, res.P99ms = us(pct(lat, .5))/1e3, us(pct(lat, .99))/1e3
	}
	return res
}
