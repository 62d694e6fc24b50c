package main

import (
	"fmt"
	"strings"
)

// notes are the lines under the table: recording cost, the targets
// for wstap (met or missed), unavailable peers and errors.
func (r *Results) notes() string {
	var b strings.Builder
	w, nopcap, direct := r.Rows["wstap"], r.Rows["wstap-nopcap"], r.Rows["direct"]
	if w != nil && nopcap != nil {
		for _, c := range []struct {
			name string
			a, b *TPResult
		}{{"16 KiB", w.TP16K, nopcap.TP16K}, {"64 B", w.TP64, nopcap.TP64}} {
			if c.a != nil && c.b != nil && c.b.MsgPerSec > 0 {
				cost := 1 - c.a.MsgPerSec/c.b.MsgPerSec
				fmt.Fprintf(&b, "- recording cost (%s): full recording %.0f msg/s against --pcap=false %.0f msg/s: %.0f%% %s (target ≤ 20%%)\n",
					c.name, c.a.MsgPerSec, c.b.MsgPerSec, 100*cost, verdict(cost <= 0.20))
			}
		}
	}
	if w != nil && direct != nil {
		r.checks(&b, w, direct)
	}
	for _, t := range r.Targets {
		row := r.Rows[t]
		if row == nil {
			continue
		}
		if row.Unavailable != "" {
			fmt.Fprintf(&b, "- %s: not measured: %s\n", t, row.Unavailable)
		}
		for _, e := range row.Errors {
			fmt.Fprintf(&b, "- %s: %s\n", t, e)
		}
	}
	return b.String()
}

func verdict(ok bool) string {
	if ok {
		return "MET"
	}
	return "MISSED"
}

// checks prints wstap's targets from the issue against this run's figures.
func (r *Results) checks(b *strings.Builder, w, direct *Row) {
	ns := r.holdNs()
	if len(ns) > 0 {
		if h := w.holdOf(ns[len(ns)-1]); h != nil && h.RSSHeldBytes > 0 {
			fmt.Fprintf(b, "- wstap idle memory, %d wss sessions, recording on: %.1f KiB/session %s (target ≤ 32 KiB)\n",
				h.Sessions, h.KiBPerSession, verdict(h.KiBPerSession <= 32 && h.Opened == h.Sessions))
		}
	}
	ratio := func(a, d *TPResult) float64 {
		if a == nil || d == nil || d.MsgPerSec == 0 {
			return -1
		}
		return a.MsgPerSec / d.MsgPerSec
	}
	if x := ratio(w.TP16K, direct.TP16K); x >= 0 {
		fmt.Fprintf(b, "- wstap 16 KiB throughput: %.2f× direct %s (target ≥ 0.55×)\n", x, verdict(x >= 0.55))
	}
	if x := ratio(w.TP64, direct.TP64); x >= 0 {
		fmt.Fprintf(b, "- wstap 64 B throughput: %.2f× direct %s (target ≥ 0.75×)\n", x, verdict(x >= 0.75))
	}
	if h, d := w.Handshakes, direct.Handshakes; h != nil && d != nil && d.PerSec > 0 {
		x := h.PerSec / d.PerSec
		fmt.Fprintf(b, "- wstap new sessions/s: %.2f× direct, %d failed %s (target ≥ 0.6×, 0 failed)\n", x, total(h.Failed), verdict(x >= 0.6 && total(h.Failed) == 0))
	}
	if l, d := w.Latency, direct.Latency; l != nil && d != nil && l.Echoed > 0 && d.Echoed > 0 {
		add := l.P50us - d.P50us
		s := fmt.Sprintf("- wstap added echo latency p50: %+.0f µs %s (target ≤ 100 µs)", add, verdict(add <= 100))
		if hp := r.Rows["haproxy"]; hp != nil && hp.Latency != nil && hp.Latency.Echoed > 0 {
			s += fmt.Sprintf("; p99 %.0f µs against HAProxy's %.0f µs %s", l.P99us, hp.Latency.P99us, verdict(l.P99us <= hp.Latency.P99us))
		}
		b.WriteString(s + "\n")
	}
	if m := r.Rows["mitmproxy"]; m != nil && m.Unavailable == "" {
		if x := ratio(w.TP16K, m.TP16K); x >= 0 {
			fmt.Fprintf(b, "- wstap/mitmproxy 16 KiB throughput: %.1f× %s (target ≥ 10×)\n", x, verdict(x >= 10))
		}
		if h, mh := w.Handshakes, m.Handshakes; h != nil && mh != nil && mh.PerSec > 0 {
			x := h.PerSec / mh.PerSec
			fmt.Fprintf(b, "- wstap/mitmproxy new sessions/s: %.1f× %s (target ≥ 10×)\n", x, verdict(x >= 10))
		}
	}
	for _, peer := range []string{"nginx", "haproxy"} {
		p := r.Rows[peer]
		if p == nil || p.Unavailable != "" {
			continue
		}
		var behind []string
		compared := p.TP16K != nil && p.TP16K.Messages > 0 || p.Handshakes != nil && p.Handshakes.PerSec > 0 ||
			p.Latency != nil && p.Latency.Echoed > 0
		if !compared {
			fmt.Fprintf(b, "- wstap against %s: not compared (%s measured nothing)\n", peer, peer)
			continue
		}
		if a, c := ratio(w.TP16K, p.TP16K), ratio(w.TP64, p.TP64); a >= 0 && a < 1 || c >= 0 && c < 1 {
			behind = append(behind, "throughput")
		}
		if w.Handshakes != nil && p.Handshakes != nil && w.Handshakes.PerSec < p.Handshakes.PerSec {
			behind = append(behind, "new sessions/s")
		}
		if w.Latency != nil && p.Latency != nil && p.Latency.Echoed > 0 && w.Latency.P50us > p.Latency.P50us {
			behind = append(behind, "latency p50")
		}
		if len(ns) > 0 {
			if a, c := w.holdOf(ns[len(ns)-1]), p.holdOf(ns[len(ns)-1]); a != nil && c != nil && c.RSSHeldBytes > 0 && a.KiBPerSession > c.KiBPerSession {
				behind = append(behind, "idle memory")
			}
		}
		if len(behind) == 0 {
			fmt.Fprintf(b, "- wstap ahead of %s on every figure measured: MET\n", peer)
		} else {
			fmt.Fprintf(b, "- wstap behind %s on %s: MISSED\n", peer, strings.Join(behind, ", "))
		}
	}
}
