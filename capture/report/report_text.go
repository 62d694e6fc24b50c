package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/wstap/wstap/capture/record"
)

// WriteText writes the summary a support engineer reads first: what ended
// how, who dropped the 1006 sessions, at what concurrency, after what
// silence, and the rest of the evidence for each usual explanation.
func (s *Summary) WriteText(w io.Writer) error {
	tw := &textWriter{w: w}
	s.textHeader(tw)
	s.textVerdicts(tw)
	s.textDrops(tw)
	s.textCauses(tw)
	if tw.err == nil {
		s.writePlanText(tw.w)
	}
	s.textKeepalive(tw)
	s.textFindings(tw)
	s.textTLS(tw)
	s.textHTTP(tw)
	s.textRecording(tw)
	return tw.err
}

// textWriter remembers the first write error.
type textWriter struct {
	w   io.Writer
	err error
}

func (t *textWriter) printf(format string, a ...any) {
	if t.err == nil {
		_, t.err = fmt.Fprintf(t.w, format, a...)
	}
}

func (s *Summary) textHeader(t *textWriter) {
	runs := "1 run"
	if len(s.Runs) != 1 {
		runs = fmt.Sprintf("%d runs merged", len(s.Runs))
	}
	t.printf("wstap report — %s", runs)
	if !s.Start.IsZero() {
		t.printf(", %s → %s (%s)", s.Start.UTC().Format("2006-01-02 15:04:05"),
			s.End.UTC().Format("15:04:05 UTC"), s.End.Sub(s.Start).Round(time.Second))
	}
	t.printf("\n")
	for _, r := range s.Runs {
		t.printf("  %s", r.Dir)
		if r.Upstream != "" {
			t.printf("  (%s → %s)", r.Mode, r.Upstream)
		}
		t.printf("  %s sessions\n", groupInt(r.Sessions))
	}
}

func (s *Summary) textVerdicts(t *textWriter) {
	t.printf("\nSessions: %s (%s upgraded)\n", groupInt(s.Sessions), groupInt(s.Upgraded))
	for _, v := range s.Verdicts {
		if v.Count > 0 {
			t.printf("  %-24s %8s\n", v.Verdict, groupInt(v.Count))
		}
	}
}

func (s *Summary) textDrops(t *textWriter) {
	t.printf("\n1006 (abnormal closure): %s of %s upgraded sessions (%s)\n",
		groupInt(s.Abnormal), groupInt(s.Upgraded), percent(s.AbnormalShare))
	if s.ProxyCaused > 0 {
		t.printf("  1006 caused by wstap itself: %s (verdict proxy-error: its own TLS stack or an internal error ended them, not the platform or the client; see their findings)\n",
			groupInt(s.ProxyCaused))
	}
	if s.Abnormal > 0 {
		t.printf("  dropped by: %s\n", countsText(s.DroppedBy))
		t.printf("  how:        %s\n", countsText(s.DroppedHow))
	}
	t.printf("  peak concurrency: %s open sessions\n", groupInt(s.Concurrency.Peak))
}

// textCauses leads with the causes, largest first, then the seven verdicts.
func (s *Summary) textCauses(t *textWriter) {
	if t.err == nil {
		t.printf("\n")
		writeCausesText(t.w, s.Abnormal, s.Causes, s.Explanations)
	}
}

func (s *Summary) textKeepalive(t *textWriter) {
	k := s.Keepalive
	t.printf("\nKeep-alive")
	var against []string
	if k.PlatformPingEveryMS > 0 {
		against = append(against, "the platform pings every "+secondsText(k.PlatformPingEveryMS))
	}
	if k.IdleTimeoutMS > 0 {
		against = append(against, "its idle timeout is "+secondsText(k.IdleTimeoutMS))
	}
	if len(against) > 0 {
		t.printf(" (judged against the platform: %s)", strings.Join(against, ", "))
	}
	t.printf("\n")
	dir := func(name, answerer string, d dirKeepalive) {
		t.printf("  %s: %s pings from %s sessions (%s sent none)", name, groupInt(int(d.Pings)),
			groupInt(d.SessionsPinging), groupInt(d.SessionsSilent))
		if d.IntervalMS.N > 0 {
			t.printf("; interval p50 %s (p90 %s, max %s)", secondsText(d.IntervalMS.P50),
				secondsText(d.IntervalMS.P90), secondsText(d.IntervalMS.Max))
		}
		if d.PongRTTMS.N > 0 {
			t.printf("; %s's pong RTT p50 %s ms, max %s ms", answerer, msText(d.PongRTTMS.P50), msText(d.PongRTTMS.Max))
		}
		t.printf("\n")
	}
	dir("client → upstream", "upstream", k.ClientToUpstream)
	dir("upstream → client", "client", k.UpstreamToClient)
	s.textKeepaliveGroups(t)
	t.printf("  findings: late-pong (over --late-pong) %s sessions, no-keepalive (over --no-keepalive) %s sessions\n",
		groupInt(k.LatePongs), groupInt(k.NoKeepalive))
}

// textKeepaliveGroups writes the keep-alive of the 1006 sessions and of the
// others side by side.
func (s *Summary) textKeepaliveGroups(t *textWriter) {
	k := s.Keepalive
	if len(k.Groups) != 2 || k.Groups[0].Sessions+k.Groups[1].Sessions == 0 {
		return
	}
	a, o := k.Groups[0], k.Groups[1]
	row := func(name, x, y string) { t.printf("  %-52s %16s %16s\n", name, x, y) }
	row("", "1006 sessions", "other sessions")
	row("upgraded sessions", groupInt(a.Sessions), groupInt(o.Sessions))
	row("client sent a data frame or ping", groupInt(a.Sending), groupInt(o.Sending))
	row("client's longest silence, pongs not counted: p50", qText(a.ClientLongestSilenceMS, false), qText(o.ClientLongestSilenceMS, false))
	row("                                              max", qText(a.ClientLongestSilenceMS, true), qText(o.ClientLongestSilenceMS, true))
	if k.IdleTimeoutMS > 0 {
		row("silent for the idle timeout or longer", groupInt(a.SilentPastIdle), groupInt(o.SilentPastIdle))
	}
	if a.SlowestPongMS.N+o.SlowestPongMS.N > 0 {
		row("slowest pong to a platform ping: p50", pongText(a.SlowestPongMS, false), pongText(o.SlowestPongMS, false))
		row("                                 max", pongText(a.SlowestPongMS, true), pongText(o.SlowestPongMS, true))
		row("pong later than the platform's ping interval", groupInt(a.LatePongs), groupInt(o.LatePongs))
	}
	if k.PlatformPingEveryMS > 0 {
		row("ended with a platform ping unanswered", groupInt(a.PingUnansweredAtEnd), groupInt(o.PingUnansweredAtEnd))
	}
}

func qText(q quantiles, maxOf bool) string {
	if q.N == 0 {
		return "-"
	}
	if maxOf {
		return secondsText(q.Max)
	}
	return secondsText(q.P50)
}

func pongText(q quantiles, maxOf bool) string {
	if q.N == 0 {
		return "-"
	}
	if maxOf {
		return durationText(q.Max)
	}
	return durationText(q.P50)
}

func (s *Summary) textFindings(t *textWriter) {
	if len(s.Findings) == 0 {
		t.printf("\nFindings: none\n")
		return
	}
	t.printf("\nFindings (sessions per rule)\n")
	for _, f := range s.Findings {
		t.printf("  %-28s %-5s %8s   e.g. %s\n", f.Rule, f.Severity, groupInt(f.Count), strings.Join(f.Examples, ", "))
	}
}

func (s *Summary) textTLS(t *textWriter) {
	r := s.TLS
	t.printf("\n%s\n", r.Text)
	if r.RuledOut() {
		return
	}
	for _, l := range []struct {
		name string
		r    tlsLegReport
	}{{string(record.SideClient), r.Client}, {string(record.SideUpstream), r.Upstream}} {
		if l.r.Handshakes == 0 {
			t.printf("  %-8s no TLS handshake\n", l.name)
			continue
		}
		t.printf("  %-8s %s handshakes, %s failed (%s)", l.name, groupInt(l.r.Handshakes),
			groupInt(l.r.Failures), percent(l.r.FailureShare))
		if q := l.r.HandshakeMS; q.N > 0 {
			t.printf("; handshake p50 %s ms, p90 %s ms, max %s ms", msText(q.P50), msText(q.P90), msText(q.Max))
		}
		t.printf("; resumed %s (%s)\n", groupInt(l.r.Resumed), percent(l.r.ResumedShare))
		for _, c := range l.r.Causes {
			t.printf("           failed: %-32s %8s\n", shorten(c.Cause, 32), groupInt(c.Count))
		}
		if len(l.r.AbnormalEnds) > 0 {
			t.printf("           TLS end of the 1006 sessions: %s\n", countsText(l.r.AbnormalEnds))
		}
	}
	if len(r.Renegotiations) == 0 {
		t.printf("  renegotiations: none\n")
	} else {
		var by []string
		for _, n := range r.Renegotiations {
			by = append(by, fmt.Sprintf("%s %s %s", n.Leg, n.Outcome, groupInt(n.Count)))
		}
		t.printf("  renegotiations: %s; in %s sessions, %s of them ended in 1006\n", strings.Join(by, ", "),
			groupInt(r.RenegotiatedSessions), groupInt(r.RenegotiatedAbnormal))
	}
	bands := func(title string, bs []tlsBand) {
		if len(bs) == 0 {
			return
		}
		t.printf("  %-19s %24s %26s %8s\n", title, "client failed/handshakes", "upstream failed/handshakes", "reneg.")
		for _, b := range bs {
			t.printf("  %-19s %24s %26s %8s\n", b.Label, bandCell(b.ClientFailures, b.ClientHandshakes),
				bandCell(b.UpstreamFailures, b.UpstreamHandshakes), groupInt(b.Renegotiations))
		}
	}
	bands("open sessions", r.ByConcurrency)
	bands("time (UTC)", r.ByTime)
	if len(s.TLSFailures) > 0 {
		t.printf("  TLS failures (by leg and alert)\n")
		for _, f := range s.TLSFailures {
			t.printf("    %-8s %-24s %8s   %s\n", f.Leg, f.Alert, groupInt(f.Count), f.Example)
		}
	}
}

// bandCell writes "3/120 (2.5%)", or "0/120".
func bandCell(n, of int) string {
	if n == 0 {
		return fmt.Sprintf("0/%s", groupInt(of))
	}
	return fmt.Sprintf("%s/%s (%s)", groupInt(n), groupInt(of), percent(ratio(n, of)))
}

func (s *Summary) textHTTP(t *textWriter) {
	t.printf("\nNon-WebSocket requests: %s\n", groupInt(s.HTTP.Requests))
	for _, st := range s.HTTP.ByStatus {
		note := ""
		if st.Status == 429 {
			note = "   ← throttled (429 Too Many Requests)"
		}
		t.printf("  %3d %8s%s\n", st.Status, groupInt(st.Count), note)
	}
	if len(s.Rejected) > 0 {
		t.printf("  refused by wstap: %s\n", countsText(s.Rejected))
	}
}

func (s *Summary) textRecording(t *textWriter) {
	c := s.Counters
	t.printf("\nRecording: events dropped %s, packets dropped %s, accept errors %s\n",
		groupInt(int(c.EventsDropped)), groupInt(int(c.PacketsDropped)), groupInt(int(max(c.AcceptErrors, int64(s.AcceptErrors)))))
	if c.EventsDropped > 0 {
		t.printf("  some events were dropped: the event log is incomplete; the session records are not\n")
	}
	for _, p := range s.Problems {
		t.printf("  %s\n", p)
	}
}

// countsText writes a count map largest first: "upstream 800, client 12".
func countsText(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		name := k
		if name == "" {
			name = "(unknown)"
		}
		parts[i] = name + " " + groupInt(m[k])
	}
	return strings.Join(parts, ", ")
}

// percent writes a share: 0.3712 → "37.1%".
func percent(f float64) string {
	return fmt.Sprintf("%.1f%%", 100*f)
}

// msText writes milliseconds without needless decimals.
func msText(ms float64) string {
	if ms >= 100 {
		return fmt.Sprintf("%.0f", ms)
	}
	return fmt.Sprintf("%.1f", ms)
}

// secondsText writes milliseconds as seconds: "60 s", "2.0 s".
func secondsText(ms float64) string {
	if ms >= 10000 {
		return fmt.Sprintf("%.0f s", ms/1000)
	}
	return fmt.Sprintf("%.1f s", ms/1000)
}

// spanText writes a range of milliseconds in seconds: "58–61 s", "1.9–2.1 s",
// or one figure when both ends round alike.
func spanText(lo, hi float64) string {
	format := "%.1f"
	if hi >= 10000 {
		format = "%.0f"
	}
	l, h := fmt.Sprintf(format, lo/1000), fmt.Sprintf(format, hi/1000)
	if l == h {
		return l + " s"
	}
	return l + "–" + h + " s"
}
