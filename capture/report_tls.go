package capture

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// TLS section of the report: what a user needs to confirm or rule out "TLS
// fails or renegotiates under concurrency" (DESIGN.md, explanation 4).

// tlsTimeBuckets is the number of time buckets: tenths of the run.
const tlsTimeBuckets = 10

// tlsMaxCauses caps the failure causes listed per leg.
const tlsMaxCauses = 8

// TLSReport is the TLS ledger of the merged runs.
type TLSReport struct {
	// Text is the one-sentence conclusion.
	Text     string       `json:"text"`
	Client   TLSLegReport `json:"client"`
	Upstream TLSLegReport `json:"upstream"`
	// Renegotiations counts renegotiations by leg and outcome (accepted,
	// refused), from "tls-renegotiation" events and the session records.
	Renegotiations       []TLSRenegotiationCount `json:"renegotiations"`
	RenegotiatedSessions int                     `json:"renegotiated_sessions"`
	// RenegotiatedAbnormal: of those sessions, how many ended in 1006.
	RenegotiatedAbnormal int `json:"renegotiated_abnormal"`
	// ByConcurrency: handshakes, failures and renegotiations by the number
	// of upgraded sessions open (all runs merged) when they happened.
	ByConcurrency []TLSBand `json:"by_concurrency"`
	// ByTime: the same by tenth of the run.
	ByTime []TLSBand `json:"by_time"`
}

// TLSLegReport is the TLS of one leg over all sessions.
type TLSLegReport struct {
	Handshakes   int        `json:"handshakes"`
	Failures     int        `json:"failures"`
	FailureShare float64    `json:"failure_share"`
	Causes       []TLSCause `json:"failures_by_cause"`
	// HandshakeMS: the duration of the successful handshakes.
	HandshakeMS  Quantiles `json:"handshake_ms"`
	Resumed      int       `json:"resumed"`
	ResumedShare float64   `json:"resumed_share"` // of the successful handshakes
	// FailureConcurrency: the open sessions at each failure.
	FailureConcurrency Quantiles `json:"failure_concurrency"`
	MinFailureConc     int       `json:"min_failure_concurrency"`
	FirstFailureAt     time.Time `json:"first_failure_at,omitzero"`
	// Threshold: the concurrency above which this leg's failures
	// concentrate (as for 1006, see Threshold); nil when they do not.
	Threshold *Threshold `json:"threshold"`
	// AbnormalEnds: how this leg's TLS ended in the sessions that ended in
	// 1006: "close_notify", "tcp" (a bare TCP end), "unknown".
	AbnormalEnds map[string]int `json:"abnormal_ends"`
}

// TLSCause counts the failures of a leg with one alert (or, without an
// alert, one error).
type TLSCause struct {
	Cause string `json:"cause"`
	Count int    `json:"count"`
}

// TLSRenegotiationCount counts renegotiations on one leg with one outcome.
type TLSRenegotiationCount struct {
	Leg     string `json:"leg"`
	Outcome string `json:"outcome"`
	Count   int    `json:"count"`
}

// TLSBand is one concurrency band (Low–High open sessions) or one stretch of
// time (From–To) with the TLS events in it.
type TLSBand struct {
	Label              string    `json:"label"`
	Low                int       `json:"low,omitempty"`
	High               int       `json:"high,omitempty"`
	From               time.Time `json:"from,omitzero"`
	To                 time.Time `json:"to,omitzero"`
	ClientHandshakes   int       `json:"client_handshakes"`
	ClientFailures     int       `json:"client_failures"`
	UpstreamHandshakes int       `json:"upstream_handshakes"`
	UpstreamFailures   int       `json:"upstream_failures"`
	Renegotiations     int       `json:"renegotiations"`
}

// ClientShare and UpstreamShare are the failure shares of the band.
func (b TLSBand) ClientShare() float64   { return ratio(b.ClientFailures, b.ClientHandshakes) }
func (b TLSBand) UpstreamShare() float64 { return ratio(b.UpstreamFailures, b.UpstreamHandshakes) }

func ratio(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

// tlsPoint is one handshake or renegotiation, when and at what concurrency.
type tlsPoint struct {
	leg    string
	at     time.Time
	conc   int
	failed bool
	reneg  bool
}

// openAt is the number of upgraded sessions open at t, all runs merged.
func (s *Summary) openAt(t time.Time) int {
	i := sort.Search(len(s.steps), func(k int) bool { return s.steps[k].At.After(t) })
	if i == 0 {
		return 0
	}
	return s.steps[i-1].Open
}

// defaultOutcome is what wstap does with a renegotiation on a leg: the
// upstream's is accepted, a client's refused.
func defaultOutcome(leg string) string {
	if leg == string(SideClient) {
		return "refused"
	}
	return "accepted"
}

// summarizeTLS fills s.TLS.
func (s *Summary) summarizeTLS() {
	t := &s.TLS
	legs := map[string]*TLSLegReport{string(SideClient): &t.Client, string(SideUpstream): &t.Upstream}
	causes := map[string]map[string]int{string(SideClient): {}, string(SideUpstream): {}}
	hsMS := map[string][]float64{}
	var points []tlsPoint
	reneg := map[[2]string]int{}
	for _, l := range legs {
		l.AbnormalEnds = map[string]int{}
	}
	handshake := func(leg string, at time.Time, failed bool, alert, errText string) {
		l := legs[leg]
		if l == nil {
			return
		}
		l.Handshakes++
		p := tlsPoint{leg: leg, at: at, conc: s.openAt(at), failed: failed}
		points = append(points, p)
		if failed {
			l.Failures++
			cause := alert
			if cause == "" {
				cause = errText
			}
			if cause == "" {
				cause = "(unknown)"
			}
			causes[leg][cause]++
			if l.FirstFailureAt.IsZero() || at.Before(l.FirstFailureAt) {
				l.FirstFailureAt = at
			}
		}
	}
	for i, r := range s.runs {
		ids := map[string]bool{}
		evReneg := map[string]map[string]int{} // session → leg → count
		for _, e := range r.Renegotiations {
			leg, outcome := e.Leg, e.Outcome
			if leg == "" {
				leg = string(SideUpstream)
			}
			if outcome == "" {
				outcome = defaultOutcome(leg)
			}
			reneg[[2]string{leg, outcome}]++
			points = append(points, tlsPoint{leg: leg, at: e.Time, conc: s.openAt(e.Time), reneg: true})
			if evReneg[e.Session] == nil {
				evReneg[e.Session] = map[string]int{}
			}
			evReneg[e.Session][leg]++
		}
		for _, ref := range s.sess {
			if ref.run != i {
				continue
			}
			rec := ref.rec
			ids[rec.ID] = true
			renegotiated := len(evReneg[rec.ID]) > 0
			for _, lg := range []struct {
				name string
				leg  *TLSLeg
			}{{string(SideClient), rec.TLS.Client}, {string(SideUpstream), rec.TLS.Upstream}} {
				if lg.leg == nil {
					continue
				}
				l := lg.leg
				failed := l.Error != "" || l.Alert != ""
				at := rec.Start.Add(time.Duration(l.HandshakeMS * float64(time.Millisecond)))
				if failed && l.HandshakeMS == 0 {
					at = ref.end
				}
				handshake(lg.name, at, failed, l.Alert, l.Error)
				if !failed {
					hsMS[lg.name] = append(hsMS[lg.name], l.HandshakeMS)
					if l.Resumed {
						legs[lg.name].Resumed++
					}
				}
				if extra := l.Renegotiations - evReneg[rec.ID][lg.name]; extra > 0 {
					// Events dropped: the record still counts them.
					reneg[[2]string{lg.name, defaultOutcome(lg.name)}] += extra
					for range extra {
						points = append(points, tlsPoint{leg: lg.name, at: ref.end, conc: s.openAt(ref.end), reneg: true})
					}
				}
				if l.Renegotiations > 0 {
					renegotiated = true
				}
				if rec.Abnormal {
					end := l.End
					if end == "" {
						end = "unknown"
					}
					legs[lg.name].AbnormalEnds[end]++
				}
			}
			if renegotiated {
				t.RenegotiatedSessions++
				if rec.Abnormal {
					t.RenegotiatedAbnormal++
				}
			}
		}
		for sid := range evReneg {
			if !ids[sid] {
				t.RenegotiatedSessions++ // a session without a record
			}
		}
		for _, e := range r.TLSErrors {
			if e.Session == "" || !ids[e.Session] {
				handshake(e.Leg, e.Time, true, e.Alert, e.Error)
			}
		}
	}
	var failConc = map[string][]float64{}
	var failC = map[string][]int{}
	var allC = map[string][]int{}
	var allF = map[string][]bool{}
	for _, p := range points {
		if p.reneg {
			continue
		}
		allC[p.leg] = append(allC[p.leg], p.conc)
		allF[p.leg] = append(allF[p.leg], p.failed)
		if p.failed {
			failConc[p.leg] = append(failConc[p.leg], float64(p.conc))
			failC[p.leg] = append(failC[p.leg], p.conc)
		}
	}
	for name, l := range legs {
		l.FailureShare = ratio(l.Failures, l.Handshakes)
		l.HandshakeMS = quantilesOf(hsMS[name])
		l.ResumedShare = ratio(l.Resumed, l.Handshakes-l.Failures)
		l.FailureConcurrency = quantilesOf(failConc[name])
		if len(failC[name]) > 0 {
			l.MinFailureConc = failC[name][0]
			for _, c := range failC[name] {
				l.MinFailureConc = min(l.MinFailureConc, c)
			}
		}
		l.Threshold = EstimateThreshold(allC[name], allF[name])
		l.Causes = []TLSCause{}
		for _, c := range sortedCounts(causes[name]) {
			l.Causes = append(l.Causes, TLSCause{c.Verdict, c.Count})
		}
	}
	t.Renegotiations = []TLSRenegotiationCount{}
	for k, n := range reneg {
		t.Renegotiations = append(t.Renegotiations, TLSRenegotiationCount{k[0], k[1], n})
	}
	sort.Slice(t.Renegotiations, func(i, j int) bool {
		a, b := t.Renegotiations[i], t.Renegotiations[j]
		if a.Leg != b.Leg {
			return a.Leg < b.Leg
		}
		return a.Outcome < b.Outcome
	})
	t.ByConcurrency, t.ByTime = s.tlsBands(points)
	t.Text = t.sentence()
}

// tlsBands groups the points by concurrency (bands as wide as the ticks of
// the drops-against-concurrency chart) and by tenth of the run.
func (s *Summary) tlsBands(points []tlsPoint) (byConc, byTime []TLSBand) {
	byConc, byTime = []TLSBand{}, []TLSBand{}
	if len(points) == 0 {
		return byConc, byTime
	}
	hi := 0
	from, to := s.Start, s.End
	for _, p := range points {
		hi = max(hi, p.conc)
		if from.IsZero() || p.at.Before(from) {
			from = p.at
		}
		if p.at.After(to) {
			to = p.at
		}
	}
	step := max(1, int(niceStep(yMax(float64(hi+1)), 5)))
	for lo := 0; lo <= hi; lo += step {
		byConc = append(byConc, TLSBand{Label: groupInt(lo) + "–" + groupInt(lo+step-1), Low: lo, High: lo + step - 1})
	}
	span := to.Sub(from)
	n := tlsTimeBuckets
	if span <= 0 {
		n = 1
	}
	for i := range n {
		a, b := from.Add(span*time.Duration(i)/time.Duration(n)), from.Add(span*time.Duration(i+1)/time.Duration(n))
		byTime = append(byTime, TLSBand{Label: a.UTC().Format("15:04:05") + "–" + b.UTC().Format("15:04:05"), From: a, To: b})
	}
	add := func(b *TLSBand, p tlsPoint) {
		switch {
		case p.reneg:
			b.Renegotiations++
		case p.leg == string(SideClient):
			b.ClientHandshakes++
			if p.failed {
				b.ClientFailures++
			}
		default:
			b.UpstreamHandshakes++
			if p.failed {
				b.UpstreamFailures++
			}
		}
	}
	for _, p := range points {
		add(&byConc[min(p.conc/step, len(byConc)-1)], p)
		k := 0
		if span > 0 {
			k = min(int(int64(p.at.Sub(from))*int64(n)/int64(span)), n-1)
		}
		add(&byTime[k], p)
	}
	return byConc, byTime
}

// sentence is the one-line conclusion: "TLS: 0 failures in 5,000 client
// handshakes and 5,000 upstream handshakes; no renegotiation", or "TLS: 37
// of 5,000 client handshakes failed (unknown_ca 37), all above 1,150 open
// sessions; 0 of 5,000 upstream handshakes failed; no renegotiation".
func (t *TLSReport) sentence() string {
	c, u := t.Client, t.Upstream
	var parts []string
	switch {
	case c.Handshakes == 0 && u.Handshakes == 0:
		parts = append(parts, "no TLS handshake on either leg (plain TCP)")
	case c.Failures == 0 && u.Failures == 0:
		var legs []string
		for _, l := range []struct {
			name string
			n    int
		}{{string(SideClient), c.Handshakes}, {string(SideUpstream), u.Handshakes}} {
			if l.n > 0 {
				legs = append(legs, plural(l.n, l.name+" handshake", l.name+" handshakes"))
			}
		}
		parts = append(parts, "0 failures in "+strings.Join(legs, " and "))
	default:
		for _, l := range []struct {
			name string
			r    TLSLegReport
		}{{string(SideClient), c}, {string(SideUpstream), u}} {
			if l.r.Handshakes > 0 {
				parts = append(parts, legFailureText(l.name, l.r))
			}
		}
	}
	n := 0
	var by []string
	for _, r := range t.Renegotiations {
		n += r.Count
		by = append(by, fmt.Sprintf("%s %s %s", r.Leg, r.Outcome, groupInt(r.Count)))
	}
	if n == 0 {
		parts = append(parts, "no renegotiation")
	} else {
		parts = append(parts, fmt.Sprintf("%s (%s) in %s, %s of which ended in 1006",
			plural(n, "renegotiation", "renegotiations"), strings.Join(by, ", "),
			plural(t.RenegotiatedSessions, "session", "sessions"), groupInt(t.RenegotiatedAbnormal)))
	}
	return "TLS: " + strings.Join(parts, "; ")
}

// legFailureText: "37 of 5,000 client handshakes failed (unknown_ca 37),
// all above 1,150 open sessions".
func legFailureText(leg string, l TLSLegReport) string {
	text := fmt.Sprintf("%s of %s %s handshakes failed", groupInt(l.Failures), groupInt(l.Handshakes), leg)
	if l.Handshakes == 1 {
		text = fmt.Sprintf("%s of 1 %s handshake failed", groupInt(l.Failures), leg)
	}
	if l.Failures == 0 {
		return text
	}
	var cs []string
	for i, c := range l.Causes {
		if i == 3 {
			cs = append(cs, "…")
			break
		}
		cs = append(cs, fmt.Sprintf("%s %s", shorten(c.Cause, 60), groupInt(c.Count)))
	}
	text += " (" + strings.Join(cs, ", ") + ")"
	q := l.FailureConcurrency
	switch th := l.Threshold; {
	case th != nil && th.BelowDrops == 0:
		text += fmt.Sprintf(", all above %s open sessions (%s of the %s handshakes above failed)",
			groupInt(th.Level), percent(ratio(th.AboveDrops, th.Above)), groupInt(th.Above))
	case th != nil:
		text += fmt.Sprintf(", concentrated above %s open sessions (%s of the handshakes above failed, %s at or below)",
			groupInt(th.Level), percent(ratio(th.AboveDrops, th.Above)), percent(ratio(th.BelowDrops, th.Below)))
	case l.MinFailureConc == int(q.Max):
		text += fmt.Sprintf(", at %s open sessions", groupInt(l.MinFailureConc))
	default:
		text += fmt.Sprintf(", at %s to %s open sessions, not concentrated above a level",
			groupInt(l.MinFailureConc), groupInt(int(q.Max)))
	}
	return text
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return groupInt(n) + " " + many
}

// shorten cuts s to at most n runes.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
