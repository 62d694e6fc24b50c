package main

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/wstap/wstap/internal/load"
)

// holdConfig is the hold work: open Sessions idle sessions (Dialers in
// parallel, within OpenLimit), keep them for Hold, and read the proxy's RSS
// Settle after the last one opened.
type holdConfig struct {
	Sessions, Dialers int
	OpenLimit, Hold   time.Duration
	Settle            time.Duration
}

// HoldResult is what the hold work measured.
type HoldResult struct {
	Sessions       int            `json:"sessions"`
	Opened         int            `json:"opened"`
	Failed         map[string]int `json:"failed,omitempty"`
	Dropped        map[string]int `json:"dropped,omitempty"` // ended during the hold, by how
	OpenSeconds    float64        `json:"open_seconds"`
	RSSBeforeBytes int64          `json:"rss_before_bytes,omitempty"`
	RSSHeldBytes   int64          `json:"rss_held_bytes,omitempty"`
	KiBPerSession  float64        `json:"kib_per_session,omitempty"`
	HeldSeconds    float64        `json:"held_seconds"`
	Error          string         `json:"error,omitempty"`
}

// hold runs the hold work; rss reads the proxy's memory (nil for direct).
func hold(ctx context.Context, d *dialer, cfg holdConfig, rss func() (int64, error)) HoldResult {
	res := HoldResult{Sessions: cfg.Sessions, Dropped: map[string]int{}}
	if rss != nil {
		time.Sleep(time.Second)
		if v, err := rss(); err == nil {
			res.RSSBeforeBytes = v
		}
	}
	t0 := time.Now()
	sessions, failed := openMany(ctx, d, cfg.Sessions, cfg.Dialers, cfg.OpenLimit)
	res.OpenSeconds = time.Since(t0).Seconds()
	res.Failed, res.Opened = failed, len(sessions)
	// Each session's reader waits for the end: nothing arrives on an idle
	// session, so whatever ends a read is a drop.
	held := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	closing := make(chan struct{})
	for _, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := io.Copy(io.Discard, s.br)
			select {
			case <-closing:
				return
			default:
			}
			mu.Lock()
			res.Dropped[dropHow(err)]++
			mu.Unlock()
		}()
	}
	sleepCtx(ctx, cfg.Settle)
	if rss != nil && len(sessions) > 0 {
		v, err := rss()
		if err != nil {
			res.Error = err.Error()
		} else {
			res.RSSHeldBytes = v
			res.KiBPerSession = float64(v-res.RSSBeforeBytes) / 1024 / float64(len(sessions))
		}
	}
	sleepCtx(ctx, cfg.Hold-cfg.Settle)
	res.HeldSeconds = time.Since(held).Seconds()
	close(closing)
	for _, s := range sessions {
		s.c.Close()
	}
	wg.Wait()
	return res
}

// dropHow names how a held session ended (load.How; io.Copy reports the
// end of the stream as no error).
func dropHow(err error) string {
	if err == nil {
		return "eof"
	}
	return load.How(err)
}
