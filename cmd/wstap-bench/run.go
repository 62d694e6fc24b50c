package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// run sets up, runs every work against every target and reports.
func run(ctx context.Context, o *options, args []string) error {
	res := newResults(o, args)
	e, err := setup(o, res)
	if e != nil && e.tmp != "" && !o.keep {
		defer os.RemoveAll(e.tmp)
	} else if e != nil {
		logf("keeping %s", e.tmp)
	}
	if err != nil {
		return err
	}
	started := time.Now()
	for _, w := range o.works {
		switch w {
		case "hold":
			e.holdWork(ctx, o, res)
		case "latency":
			e.latencyWork(ctx, o, res)
		case "throughput":
			e.throughputWork(ctx, o, res)
		case "handshakes":
			e.handshakeWork(ctx, o, res)
		}
		if ctx.Err() != nil {
			break
		}
	}
	res.Seconds = time.Since(started).Seconds()
	res.End = time.Now().UTC()
	if err := report(res, o.out); err != nil {
		return err
	}
	return ctx.Err()
}

// report prints the table and writes the JSON file.
func report(res *Results, out string) error {
	table := res.table()
	fmt.Print(table)
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("--out %s: %w", out, err)
	}
	logf("wrote %s", out)
	return nil
}

// holdWork holds each of --n idle sessions against every target.
func (e *runEnv) holdWork(ctx context.Context, o *options, res *Results) {
	for _, n := range o.ns {
		e.each(ctx, o, res, "hold", func(j *job, r *Row) {
			cfg := holdConfig{Sessions: n, Dialers: 32, OpenLimit: openLimit(n), Hold: o.hold,
				Settle: o.settle}
			var rss func() (int64, error)
			if j.proxy != nil {
				rss = j.rss
			}
			h := hold(ctx, e.dialerSized(j.url, 4<<10), cfg, rss)
			logf("  hold %d: opened %d, failed %v, dropped %v, %.1f KiB/session", n, h.Opened, h.Failed, h.Dropped, h.KiBPerSession)
			r.Hold = append(r.Hold, h)
		})
	}
}

// latencyWork measures echo latency against every target.
func (e *runEnv) latencyWork(ctx context.Context, o *options, res *Results) {
	e.each(ctx, o, res, "latency", func(j *job, r *Row) {
		l := latency(ctx, e.dialerSized(j.url, 4<<10), latConfig{Sessions: o.latSessions, Size: 256,
			Every: time.Second, Duration: o.latDur, OpenLimit: openLimit(o.latSessions), Dialers: 32})
		logf("  latency: %d/%d sessions, %d/%d echoed, p50 %.0f µs p99 %.0f µs p99.9 %.0f µs",
			l.Opened, l.Sessions, l.Echoed, l.Sent, l.P50us, l.P99us, l.P999us)
		r.Latency = &l
	})
}

// throughputWork measures 16 KiB and 64 B messages, --repeat times
// interleaved, and keeps the median.
func (e *runEnv) throughputWork(ctx context.Context, o *options, res *Results) {
	for range o.repeat {
		e.each(ctx, o, res, "throughput 16 KiB", func(j *job, r *Row) {
			t := throughput(ctx, e.dialerSized(j.url, 64<<10), tpConfig{Sessions: 4, Size: 16 << 10, InFlight: 32,
				Warmup: 2 * time.Second, Duration: o.tp}, j.cpu())
			logf("  16 KiB: %.1f MB/s, proxy CPU %.1f µs/msg %s", t.MBPerSec, t.ProxyCPUus, t.Error)
			r.TP16KRuns = append(r.TP16KRuns, t)
		})
		e.each(ctx, o, res, "throughput 64 B", func(j *job, r *Row) {
			t := throughput(ctx, e.dialerSized(j.url, 64<<10), tpConfig{Sessions: 1, Size: 64, InFlight: 256,
				Warmup: 2 * time.Second, Duration: o.tp}, j.cpu())
			logf("  64 B: %.0f msg/s, proxy CPU %.2f µs/msg %s", t.MsgPerSec, t.ProxyCPUus, t.Error)
			r.TP64Runs = append(r.TP64Runs, t)
		})
	}
	for _, r := range res.Rows {
		r.TP16K, r.TP64 = medianTP(r.TP16KRuns), medianTP(r.TP64Runs)
	}
}

// handshakeWork measures new sessions per second, --repeat times
// interleaved, and keeps the median.
func (e *runEnv) handshakeWork(ctx context.Context, o *options, res *Results) {
	for range o.repeat {
		e.each(ctx, o, res, "handshakes", func(j *job, r *Row) {
			h := handshakes(ctx, e.dialerSized(j.url, 4<<10), 16, o.hs)
			logf("  handshakes: %.0f/s, failed %v", h.PerSec, h.Failed)
			r.HandshakeRuns = append(r.HandshakeRuns, h)
		})
	}
	for _, r := range res.Rows {
		r.Handshakes = medianHS(r.HandshakeRuns)
	}
}

// openLimit bounds opening n sessions: generous for a slow proxy, but bounded.
func openLimit(n int) time.Duration { return 20*time.Second + time.Duration(n)*10*time.Millisecond }

// each runs one work against every available target, each in a fresh job.
func (e *runEnv) each(ctx context.Context, o *options, res *Results, work string, fn func(*job, *Row)) {
	for _, t := range o.targets {
		r := res.row(t)
		if r.Unavailable != "" || ctx.Err() != nil {
			continue
		}
		logf("%s: %s", work, t)
		j, err := e.startJob(ctx, t)
		if err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", work, err))
			logf("  %s: %v", t, err)
			continue
		}
		fn(j, r)
		if size := j.stop(); size > 0 {
			r.RecordedBytes[work] = size
		}
	}
}

// Machine describes where the figures were taken.
type Machine struct {
	CPUs      int    `json:"cpus"`
	Model     string `json:"model"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go"`
	MemTotal  string `json:"mem_total"`
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				m.Model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		l, _, _ := strings.Cut(string(b), "\n")
		m.MemTotal = strings.Join(strings.Fields(strings.TrimPrefix(l, "MemTotal:")), " ")
	}
	return m
}

// medianTP is the run with the median message rate (nil for none).
func medianTP(runs []TPResult) *TPResult {
	if len(runs) == 0 {
		return nil
	}
	s := slices.Clone(runs)
	slices.SortFunc(s, func(a, b TPResult) int { return cmp.Compare(a.MsgPerSec, b.MsgPerSec) })
	return &s[len(s)/2]
}

// medianHS is the run with the median rate of new sessions (nil for none).
func medianHS(runs []HSResult) *HSResult {
	if len(runs) == 0 {
		return nil
	}
	s := slices.Clone(runs)
	slices.SortFunc(s, func(a, b HSResult) int { return cmp.Compare(a.PerSec, b.PerSec) })
	return &s[len(s)/2]
}
