package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Results is the JSON file: the run's setting and one Row per target.
type Results struct {
	Start       time.Time       `json:"start"`
	End         time.Time       `json:"end"`
	Seconds     float64         `json:"seconds"`
	Command     string          `json:"command"`
	Machine     Machine         `json:"machine"`
	Nofile      uint64          `json:"nofile"`
	Quick       bool            `json:"quick"`
	Targets     []string        `json:"targets"`
	Rows        map[string]*Row `json:"rows"`
	LatSessions int             `json:"latency_sessions"`
	Repeat      int             `json:"repeat"`
}

// Row is what was measured for one target.
type Row struct {
	Version       string           `json:"version,omitempty"`
	Unavailable   string           `json:"unavailable,omitempty"`
	Errors        []string         `json:"errors,omitempty"`
	Hold          []HoldResult     `json:"hold,omitempty"`
	Latency       *LatResult       `json:"latency,omitempty"`
	TP16K         *TPResult        `json:"throughput_16k,omitempty"`
	TP64          *TPResult        `json:"throughput_64b,omitempty"`
	Handshakes    *HSResult        `json:"handshakes,omitempty"`
	RecordedBytes map[string]int64 `json:"recorded_bytes,omitempty"` // size of wstap's run dir per work
	// Every run of the repeated works; the fields above hold the median.
	TP16KRuns     []TPResult `json:"throughput_16k_runs,omitempty"`
	TP64Runs      []TPResult `json:"throughput_64b_runs,omitempty"`
	HandshakeRuns []HSResult `json:"handshakes_runs,omitempty"`
}

func newResults(o *options, args []string) *Results {
	return &Results{Start: time.Now().UTC(), Command: strings.TrimSpace("go run ./cmd/wstap-bench " + strings.Join(args, " ")),
		Machine: machine(), Quick: o.quick, Targets: o.targets, Rows: map[string]*Row{}, LatSessions: o.latSessions, Repeat: o.repeat}
}

func (r *Results) row(t string) *Row {
	if r.Rows[t] == nil {
		r.Rows[t] = &Row{RecordedBytes: map[string]int64{}}
	}
	return r.Rows[t]
}

// cell is one table cell: the target, its row and direct's row.
type cell func(t string, row, direct *Row) string

// table is the Markdown table: one column per target, one line per figure,
// ratios against direct measured in the same run; then the recording cost
// and wstap's targets.
func (r *Results) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n| | %s |\n|---|%s\n", strings.Join(r.Targets, " | "), strings.Repeat("---|", len(r.Targets)))
	r.holdLines(&b)
	if r.anyLatency() {
		r.latencyLines(&b)
	}
	if r.anyOf(func(w *Row) bool { return w.TP16K != nil }) {
		r.throughputLines(&b)
	}
	if r.anyOf(func(w *Row) bool { return w.TP16K != nil }) {
		r.cpuLines(&b)
	}
	if r.anyOf(func(w *Row) bool { return w.Handshakes != nil }) {
		r.line(&b, "new wss sessions/s, 16 workers"+r.median(), handshakeCell)
	}
	b.WriteString("\n")
	b.WriteString(r.notes())
	return b.String()
}

// line writes one table line: label, then one cell per target ("n/a" for
// an unavailable one).
func (r *Results) line(b *strings.Builder, label string, c cell) {
	cells := make([]string, len(r.Targets))
	for i, t := range r.Targets {
		row := r.row(t)
		switch {
		case row.Unavailable != "":
			cells[i] = "n/a"
		default:
			cells[i] = c(t, row, r.row("direct"))
		}
	}
	fmt.Fprintf(b, "| %s | %s |\n", label, strings.Join(cells, " | "))
}

// holdLines are the hold work's lines: sessions opened and RSS per session.
func (r *Results) holdLines(b *strings.Builder) {
	for _, n := range r.holdNs() {
		r.line(b, fmt.Sprintf("hold %d idle wss: opened (failed, dropped)", n), func(_ string, row, _ *Row) string {
			h := row.holdOf(n)
			if h == nil {
				return "–"
			}
			s := fmt.Sprint(h.Opened)
			if f := total(h.Failed); f > 0 {
				s += fmt.Sprintf(" (%d failed: %s)", f, counts(h.Failed))
			}
			if d := total(h.Dropped); d > 0 {
				s += fmt.Sprintf(" (%d dropped: %s)", d, counts(h.Dropped))
			}
			return s
		})
		r.line(b, fmt.Sprintf("hold %d: RSS per session", n), func(t string, row, _ *Row) string {
			h := row.holdOf(n)
			if h == nil || t == "direct" || h.RSSHeldBytes == 0 {
				return "–"
			}
			return fmt.Sprintf("%.1f KiB", h.KiBPerSession)
		})
	}
}

// latencyLines are the latency work's lines: sessions and echo RTTs.
func (r *Results) latencyLines(b *strings.Builder) {
	r.line(b, fmt.Sprintf("latency, %d sessions × 256 B/s: opened, echoed", r.LatSessions), func(_ string, row, _ *Row) string {
		l := row.Latency
		if l == nil {
			return "–"
		}
		return fmt.Sprintf("%d, %.1f%%", l.Opened, 100*float64(l.Echoed)/float64(max(l.Sent, 1)))
	})
	r.line(b, "echo RTT p50 (added)", latCell(func(l *LatResult) float64 { return l.P50us }))
	r.line(b, "echo RTT p99 (added)", latCell(func(l *LatResult) float64 { return l.P99us }))
	r.line(b, "echo RTT p99.9 (added)", latCell(func(l *LatResult) float64 { return l.P999us }))
}

// latCell shows one latency figure and what it adds to direct's.
func latCell(get func(*LatResult) float64) cell {
	return func(t string, row, direct *Row) string {
		l := row.Latency
		if l == nil || l.Echoed == 0 {
			return "–"
		}
		s := fmt.Sprintf("%.0f µs", get(l))
		if t != "direct" && direct.Latency != nil && direct.Latency.Echoed > 0 {
			s += fmt.Sprintf(" (%+.0f)", get(l)-get(direct.Latency))
		}
		return s
	}
}

// throughputLines are the throughput work's lines, 16 KiB and 64 B.
func (r *Results) throughputLines(b *strings.Builder) {
	r.line(b, "16 KiB msgs, 4 sessions × 32 in flight"+r.median(), tpCell(func(w *Row) *TPResult { return w.TP16K }, func(t *TPResult) float64 { return t.MBPerSec }, "MB/s"))
	r.line(b, "64 B msgs, 256 in flight"+r.median(), tpCell(func(w *Row) *TPResult { return w.TP64 }, func(t *TPResult) float64 { return t.MsgPerSec }, "msg/s"))
}

// tpCell shows one throughput figure and its ratio to direct's.
func tpCell(get func(*Row) *TPResult, val func(*TPResult) float64, unit string) cell {
	return func(t string, row, direct *Row) string {
		v := get(row)
		if v == nil || v.Messages == 0 {
			if v != nil && v.Error != "" {
				return "failed"
			}
			return "–"
		}
		s := fmt.Sprintf("%.0f %s", val(v), unit)
		if d := get(direct); t != "direct" && d != nil && d.Messages > 0 {
			s += fmt.Sprintf(" (%.2f×)", val(v)/val(d))
		}
		return s
	}
}

// cpuLines are the proxy's CPU time per message of the throughput work.
func (r *Results) cpuLines(b *strings.Builder) {
	r.line(b, "proxy CPU per 16 KiB message", cpuCell(func(w *Row) *TPResult { return w.TP16K }, 1, "µs"))
	r.line(b, "proxy CPU per 1000 64 B messages", cpuCell(func(w *Row) *TPResult { return w.TP64 }, 1000, "µs"))
}

// cpuCell shows the proxy's CPU time per message, scaled.
func cpuCell(get func(*Row) *TPResult, scale float64, unit string) cell {
	return func(t string, row, _ *Row) string {
		if v := get(row); v != nil && v.ProxyCPUus > 0 {
			return fmt.Sprintf("%.2f %s", v.ProxyCPUus*scale, unit)
		}
		return "–"
	}
}

// handshakeCell shows new sessions per second, the ratio to direct's and
// the failures.
func handshakeCell(t string, row, direct *Row) string {
	h := row.Handshakes
	if h == nil {
		return "–"
	}
	s := fmt.Sprintf("%.0f", h.PerSec)
	if d := direct.Handshakes; t != "direct" && d != nil && d.PerSec > 0 {
		s += fmt.Sprintf(" (%.2f×)", h.PerSec/d.PerSec)
	}
	if f := total(h.Failed); f > 0 {
		s += fmt.Sprintf(", %d failed", f)
	}
	return s
}

func (r *Results) holdNs() []int {
	seen := map[int]bool{}
	for _, row := range r.Rows {
		for _, h := range row.Hold {
			seen[h.Sessions] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

func (row *Row) holdOf(n int) *HoldResult {
	for i := range row.Hold {
		if row.Hold[i].Sessions == n {
			return &row.Hold[i]
		}
	}
	return nil
}

func (r *Results) anyLatency() bool { return r.anyOf(func(w *Row) bool { return w.Latency != nil }) }

func (r *Results) anyOf(f func(*Row) bool) bool {
	for _, row := range r.Rows {
		if f(row) {
			return true
		}
	}
	return false
}

// counts prints "k n, k n" in key order.
func counts(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// median names the statistic of the repeated works.
func (r *Results) median() string {
	if r.Repeat > 1 {
		return fmt.Sprintf(" (median of %d)", r.Repeat)
	}
	return ""
}
