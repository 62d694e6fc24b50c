package load

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// Run opens cfg.Sessions sessions evenly over cfg.Ramp, holds each for
// cfg.Hold, closes them cleanly and returns what happened. It writes progress
// to progress while it runs (a bar on a terminal, a line every few seconds
// otherwise; nothing when nil). Its error is a setup failure (a bad URL, an
// unreadable CA file); sessions that fail or drop are results, not errors.
// When ctx ends, no more sessions start and open ones close at once; the
// result is marked Interrupted. Several Runs may go on at the same time.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Result, error) {
	p, err := check(cfg)
	if err != nil {
		return nil, err
	}
	limit, err := RaiseOpenFileLimit()
	if err != nil && progress != nil {
		fmt.Fprintf(progress, "wstap load: %v\n", err)
	}
	if progress != nil && limit > 0 && uint64(p.Sessions)+64 > limit {
		fmt.Fprintf(progress, "wstap load: warning: %d sessions but an open-file limit of %d: the load client will run out of files\n",
			p.Sessions, limit)
	}

	r := newRunner(p)
	r.res.OpenFileLimit = limit
	stopWaking := context.AfterFunc(ctx, r.wakeAll)
	defer stopWaking()
	stopProgress := startProgress(progress, r)
	r.launch(ctx)
	r.wg.Wait()
	stopProgress()
	return r.result(ctx), nil
}

// runner is one Run: the plan, live counters and the merged outcomes.
type runner struct {
	p     *plan
	up    ws.Dialer
	start time.Time
	wg    sync.WaitGroup

	// live counters, for progress and the result
	opened, failed, dropped, ended, current, maxCurrent atomic.Int64
	pingsSent, serverPings, pongsSent                   atomic.Int64
	messagesSent, echoes                                atomic.Int64

	mu   sync.Mutex
	live map[*session]struct{}
	res  Result
	rtts []time.Duration
}

func newRunner(p *plan) *runner {
	return &runner{
		p:     p,
		up:    p.upgrader(),
		start: time.Now(),
		live:  map[*session]struct{}{},
		res: Result{
			URL:           p.URL,
			Sessions:      p.Sessions,
			Failed:        map[string]int{},
			FailedExample: map[string]string{},
			CloseCodes:    map[int]int{},
			Subprotocols:  map[string]int{},
		},
	}
}

// launch starts session i at start + i*Ramp/Sessions, until all are started
// or ctx ends.
func (r *runner) launch(ctx context.Context) {
	n := int64(r.p.Sessions)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for i := int64(0); i < n; i++ {
		due := r.start.Add(time.Duration(int64(r.p.Ramp) * i / n))
		if d := time.Until(due); d > 0 {
			t.Reset(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		r.wg.Add(1)
		go r.session(ctx, uint32(i))
	}
}

// session opens session id, holds it and records how it ended.
func (r *runner) session(ctx context.Context, id uint32) {
	defer r.wg.Done()
	conn, early, protocol, err := r.p.open(ctx, &r.up, int(id))
	if err != nil {
		reason, detail := "canceled", err
		var oe *openError
		if ctx.Err() == nil && errors.As(err, &oe) {
			reason, detail = oe.reason, oe.err
		}
		r.failed.Add(1)
		r.mu.Lock()
		r.res.Failed[reason]++
		if _, ok := r.res.FailedExample[reason]; !ok {
			r.res.FailedExample[reason] = detail.Error()
		}
		r.mu.Unlock()
		return
	}
	defer conn.Close()
	s := newSession(r, id, conn, early)
	r.opened.Add(1)
	n := r.current.Add(1)
	for m := r.maxCurrent.Load(); n > m && !r.maxCurrent.CompareAndSwap(m, n); m = r.maxCurrent.Load() {
	}
	r.mu.Lock()
	r.live[s] = struct{}{}
	r.res.Subprotocols[protocol]++
	r.mu.Unlock()

	s.hold(ctx)
	r.finish(s)
}

// finish merges an ended session's outcome.
func (r *runner) finish(s *session) {
	open := r.current.Load()
	r.current.Add(-1)
	r.ended.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.live, s)
	r.rtts = append(r.rtts, s.rtts...)
	switch {
	case s.code == 0:
		r.dropped.Add(1)
		r.res.CloseCodes[int(ws.StatusAbnormalClosure)]++
		r.res.Dropped1006 = append(r.res.Dropped1006, Drop{After: s.endedAt.Sub(s.opened), How: s.how, Concurrent: int(open), Closing: s.closing})
	case s.closing:
		r.res.CloseCodes[s.code]++
		r.res.Clean++
	default:
		r.res.CloseCodes[s.code]++
		r.res.ClosedByServer++
	}
}

// wakeAll makes every open session notice that the context ended: its
// pending read returns at once and its loop sees ctx.Err.
func (r *runner) wakeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for s := range r.live {
		s.conn.SetReadDeadline(time.Now())
	}
}

// result completes the merged outcomes once every session has ended.
func (r *runner) result(ctx context.Context) *Result {
	res := r.res
	res.Opened = int(r.opened.Load())
	res.MaxConcurrent = int(r.maxCurrent.Load())
	res.PingsSent = r.pingsSent.Load()
	res.ServerPings = r.serverPings.Load()
	res.PongsSent = r.pongsSent.Load()
	res.MessagesSent = r.messagesSent.Load()
	res.Echoes = r.echoes.Load()
	res.Interrupted = ctx.Err() != nil
	res.Duration = time.Since(r.start)
	slices.Sort(r.rtts)
	res.RTTP50 = percentile(r.rtts, 0.50)
	res.RTTP99 = percentile(r.rtts, 0.99)
	if len(r.rtts) > 0 {
		res.RTTMax = r.rtts[len(r.rtts)-1]
	}
	slices.SortFunc(res.Dropped1006, func(a, b Drop) int { return cmp.Compare(a.After, b.After) })
	return &res
}
