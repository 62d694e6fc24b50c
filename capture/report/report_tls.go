package report

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/wstap/wstap/capture/record"
)

// TLS section of the report: what a user needs to confirm or rule out "TLS
// fails or renegotiates under concurrency" (docs/records.md, explanation 4).

// tlsTimeBuckets is the most time bands the TLS section cuts a run into.
const tlsTimeBuckets = 10

// tlsMaxCauses caps the failure causes listed per leg.
const tlsMaxCauses = 8

// tlsReport is the TLS ledger of the merged runs.
type tlsReport struct {
	// Text is the one-sentence conclusion.
	Text     string       `json:"text"`
	Client   tlsLegReport `json:"client"`
	Upstream tlsLegReport `json:"upstream"`
	// Renegotiations counts renegotiations by leg and outcome (accepted,
	// refused), from "tls-renegotiation" events and the session records.
	Renegotiations       []tlsRenegotiationCount `json:"renegotiations"`
	RenegotiatedSessions int                     `json:"renegotiated_sessions"`
	// RenegotiatedAbnormal: of those sessions, how many ended in 1006.
	RenegotiatedAbnormal int `json:"renegotiated_abnormal"`
	// RenegotiationFailed: the sessions one of whose renegotiations failed
	// (upstream leg) or was refused (client leg); by leg in
	// RenegotiationFailedBy; RenegotiationFailedAbnormal of them ended in
	// 1006. Whether the failed renegotiations are the 1006 sessions.
	RenegotiationFailed         int            `json:"renegotiation_failed_sessions"`
	RenegotiationFailedBy       map[string]int `json:"renegotiation_failed_by_leg"`
	RenegotiationFailedAbnormal int            `json:"renegotiation_failed_abnormal"`
	// ByConcurrency: handshakes, failures and renegotiations by the number
	// of upgraded sessions open (all runs merged) when they happened.
	ByConcurrency []tlsBand `json:"by_concurrency"`
	// ByTime: the same by stretch of time (1 s, 2 s, 5 s … wide, at most
	// about ten stretches); stretches without any event are left out.
	ByTime []tlsBand `json:"by_time"`
}

// tlsLegReport is the TLS of one leg over all sessions.
type tlsLegReport struct {
	Handshakes   int        `json:"handshakes"`
	Failures     int        `json:"failures"`
	FailureShare float64    `json:"failure_share"`
	Causes       []tlsCause `json:"failures_by_cause"`
	// HandshakeMS: the duration of the successful handshakes.
	HandshakeMS  quantiles `json:"handshake_ms"`
	Resumed      int       `json:"resumed"`
	ResumedShare float64   `json:"resumed_share"` // of the successful handshakes
	// FailureConcurrency: the open sessions at each failure.
	FailureConcurrency quantiles `json:"failure_concurrency"`
	MinFailureConc     int       `json:"min_failure_concurrency"`
	FirstFailureAt     time.Time `json:"first_failure_at,omitzero"`
	// Threshold: the concurrency above which this leg's failures
	// concentrate (as for 1006, see threshold); nil when they do not.
	Threshold *threshold `json:"threshold"`
	// AbnormalEnds: how this leg's TLS ended in the sessions that ended in
	// 1006: "close_notify", "tcp" (a bare TCP end), "unknown".
	AbnormalEnds map[string]int `json:"abnormal_ends"`
}

// tlsCause counts the failures of a leg with one alert (or, without an
// alert, one error).
type tlsCause struct {
	Cause string `json:"cause"`
	Count int    `json:"count"`
}

// tlsRenegotiationCount counts renegotiations on one leg with one outcome.
type tlsRenegotiationCount struct {
	Leg     string `json:"leg"`
	Outcome string `json:"outcome"`
	Count   int    `json:"count"`
}

// tlsBand is one concurrency band (Low–High open sessions) or one stretch of
// time (From–To) with the TLS events in it.
type tlsBand struct {
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

func ratio(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

// tlsPoint is one handshake or renegotiation, when and at what concurrency.
type tlsPoint struct {
	at     time.Time
	conc   int32
	client bool // else the upstream leg
	failed bool
	reneg  bool
}

// newTLSPoint is a point of leg; its concurrency is set once all runs are read.
func newTLSPoint(leg string, at time.Time, failed, reneg bool) tlsPoint {
	return tlsPoint{at: at, client: leg == legClient, failed: failed, reneg: reneg}
}

// leg names the point's leg.
func (p tlsPoint) leg() string {
	if p.client {
		return legClient
	}
	return legUpstream
}

// openAt is the number of upgraded sessions open at t, all runs merged.
func (s *Summary) openAt(t time.Time) int { return s.open.at(nanos(t)) }

// defaultOutcome is what wstap does with a renegotiation on a leg: the
// upstream's is accepted, a client's refused.
func defaultOutcome(leg string) string {
	if leg == legClient {
		return "refused"
	}
	return "accepted"
}

// summarizeTLS fills s.TLS from the runs' tallies (see tlsTally): the
// figures of each leg, the renegotiation counts, the bands and the sentence.
func (s *Summary) summarizeTLS() {
	y := newTLSTally()
	for _, r := range s.runs {
		for leg, ms := range r.tls.hsMS {
			y.hsMS[leg] = slices.Grow(y.hsMS[leg], len(ms))
		}
	}
	for _, r := range s.runs {
		for _, pts := range r.tls.points {
			for i := range pts.other {
				pts.other[i].conc = int32(s.openAt(pts.other[i].at))
			}
		}
		y.add(r.tls)
	}
	s.TLS.Client, s.TLS.Upstream = *y.legs[legClient], *y.legs[legUpstream]
	s.TLS.RenegotiatedSessions, s.TLS.RenegotiatedAbnormal = y.renegotiated, y.renegotiatedAbnormal
	s.TLS.RenegotiationFailed, s.TLS.RenegotiationFailedAbnormal = y.renegFailed, y.renegFailedAbnormal
	s.TLS.RenegotiationFailedBy = y.renegFailedBy
	y.legs = map[string]*tlsLegReport{legClient: &s.TLS.Client, legUpstream: &s.TLS.Upstream}
	y.open = s.open
	y.finishLegs()
	s.TLS.Renegotiations = y.renegotiationCounts()
	s.TLS.ByConcurrency, s.TLS.ByTime = s.tlsBands(y.points)
	s.TLS.Text = s.TLS.sentence()
}

// tlsTally gathers the handshakes, failures and renegotiations of a run as
// it is read (the points' concurrency waits for all runs), and then of the
// merged runs for summarizeTLS.
type tlsTally struct {
	legs   map[string]*tlsLegReport
	causes map[string]map[string]int // leg → failure cause → count
	hsMS   map[string][]float64      // leg → durations of the successful handshakes
	points []tlsRunPoints            // one per run
	open   *openTimes                // of the merged runs: the points' concurrency
	reneg  map[[2]string]int         // {leg, outcome} → renegotiations
	// renegotiated counts the sessions that renegotiated, and of those
	// renegotiatedAbnormal the 1006 ones.
	renegotiated, renegotiatedAbnormal int
	// deferred: the records that count renegotiations, settled against the
	// "tls-renegotiation" events once they are read.
	deferred []renegotiatingRecord
	// failed: session → leg → its renegotiations that failed or were
	// refused, from the events of the run at hand; renegFailed counts the
	// sessions with such a renegotiation (renegFailedBy by leg,
	// renegFailedAbnormal the 1006 ones).
	failed                           map[string]map[string]int
	renegFailed, renegFailedAbnormal int
	renegFailedBy                    map[string]int
}

// renegotiatingRecord is a session record whose legs count renegotiations.
type renegotiatingRecord struct {
	id       string
	end      time.Time
	abnormal bool
	renegs   map[string]int // leg → renegotiations
	// failed: by leg (client, upstream), whether the record counts a
	// renegotiation that failed or was refused.
	failed [2]bool
}

func newTLSTally() *tlsTally {
	y := &tlsTally{
		legs:   map[string]*tlsLegReport{legClient: {}, legUpstream: {}},
		causes: map[string]map[string]int{legClient: {}, legUpstream: {}},
		hsMS:   map[string][]float64{},
		points: []tlsRunPoints{{}},
		reneg:  map[[2]string]int{},
	}
	y.renegFailedBy = map[string]int{}
	for _, l := range y.legs {
		l.AbnormalEnds = map[string]int{}
	}
	return y
}

// point adds a handshake or renegotiation; its concurrency comes later.
func (y *tlsTally) point(p tlsPoint) {
	y.points[0].add(p)
}

// handshake counts one handshake of leg at time at, and its failure cause:
// the alert, else the error text.
func (y *tlsTally) handshake(leg string, at time.Time, failed bool, alert, errText string) {
	l := y.legs[leg]
	if l == nil {
		return
	}
	l.Handshakes++
	y.point(newTLSPoint(leg, at, failed, false))
	if !failed {
		return
	}
	l.Failures++
	cause := alert
	if cause == "" {
		cause = errText
	}
	if cause == "" {
		cause = "(unknown)"
	}
	y.causes[leg][cause]++
	if l.FirstFailureAt.IsZero() || at.Before(l.FirstFailureAt) {
		l.FirstFailureAt = at
	}
}

// renegotiationEvents counts the "tls-renegotiation" events of run r and
// returns them by session and leg.
func (y *tlsTally) renegotiationEvents(r *Run) map[string]map[string]int {
	evReneg := map[string]map[string]int{} // session → leg → count
	y.failed = map[string]map[string]int{}
	for _, e := range r.Renegotiations {
		leg, outcome := e.Leg, e.Outcome
		if leg == "" {
			leg = legUpstream
		}
		if outcome == "" {
			outcome = defaultOutcome(leg)
		}
		y.reneg[[2]string{leg, outcome}]++
		y.point(newTLSPoint(leg, e.Time, false, true))
		if evReneg[e.Session] == nil {
			evReneg[e.Session] = map[string]int{}
		}
		evReneg[e.Session][leg]++
		if outcome == "failed" || outcome == "refused" {
			if y.failed[e.Session] == nil {
				y.failed[e.Session] = map[string]int{}
			}
			y.failed[e.Session][leg]++
		}
	}
	return evReneg
}

// record counts the TLS legs of one session record as it is read; a record
// that counts renegotiations waits for the events (see events).
func (y *tlsTally) record(rec *record.Session, end time.Time) {
	var renegs map[string]int
	for _, lg := range []struct {
		name string
		leg  *record.TLSLeg
	}{{string(legClient), rec.TLS.Client}, {string(legUpstream), rec.TLS.Upstream}} {
		if lg.leg == nil {
			continue
		}
		y.recordLeg(rec, end, lg.name, lg.leg)
		if lg.leg.Renegotiations > 0 {
			if renegs == nil {
				renegs = map[string]int{}
			}
			renegs[lg.name] = lg.leg.Renegotiations
		}
	}
	// A client leg's renegotiations are always refused; an upstream leg
	// counts the failed ones.
	var failed [2]bool
	failed[0] = rec.TLS.Client != nil && rec.TLS.Client.Renegotiations > 0
	failed[1] = rec.TLS.Upstream != nil && rec.TLS.Upstream.RenegotiationsFailed > 0
	if renegs != nil || failed[1] {
		y.deferred = append(y.deferred, renegotiatingRecord{rec.ID, end, rec.Abnormal, renegs, failed})
	}
}

// recordLeg counts one TLS leg of a session record: its handshake (a failure
// without a duration is placed at the session's end), its resumption and,
// for a 1006 session, how its TLS ended.
func (y *tlsTally) recordLeg(rec *record.Session, end time.Time, name string, l *record.TLSLeg) {
	failed := l.Error != "" || l.Alert != ""
	at := rec.Start.Add(time.Duration(l.HandshakeMS * float64(time.Millisecond)))
	if failed && l.HandshakeMS == 0 {
		at = end
	}
	y.handshake(name, at, failed, l.Alert, l.Error)
	if !failed {
		y.hsMS[name] = append(y.hsMS[name], l.HandshakeMS)
		if l.Resumed {
			y.legs[name].Resumed++
		}
	}
	if rec.Abnormal {
		e := l.End
		if e == "" {
			e = "unknown"
		}
		y.legs[name].AbnormalEnds[e]++
	}
}

// events settles run r's renegotiations once its events are read (ids: the
// run's records, id → ended in 1006): the renegotiations a record counts
// beyond the events that showed them (events dropped: the record still
// counts them), the sessions that renegotiated, with a record or without,
// and those whose renegotiation failed or was refused; and the failed
// handshakes no record holds.
func (y *tlsTally) events(r *Run, ids map[string]bool) {
	evReneg := y.renegotiationEvents(r)
	seen := map[string]bool{}
	for _, d := range y.deferred {
		seen[d.id] = true
		y.settle(d, evReneg[d.id])
	}
	for sid := range evReneg {
		if seen[sid] {
			continue
		}
		abnormal, recorded := ids[sid]
		y.renegotiated++ // with a record, or a session without one
		if recorded && abnormal {
			y.renegotiatedAbnormal++
		}
		if recorded {
			y.failedRenegotiations(abnormal, [2]bool{}, y.failed[sid])
		}
	}
	y.deferred, y.failed = nil, nil
	for _, e := range r.TLSErrors {
		if _, ok := ids[e.Session]; e.Session == "" || !ok {
			y.handshake(e.Leg, e.Time, true, e.Alert, e.Error)
		}
	}
}

// settle counts a record's renegotiations against the evRenegs (by leg) the
// events showed: those beyond them (placed at the session's end), whether
// the session renegotiated, and whether one of its renegotiations failed.
func (y *tlsTally) settle(d renegotiatingRecord, evRenegs map[string]int) {
	for leg, n := range d.renegs {
		if extra := n - evRenegs[leg]; extra > 0 {
			y.reneg[[2]string{leg, defaultOutcome(leg)}] += extra
			for range extra {
				y.point(newTLSPoint(leg, d.end, false, true))
			}
		}
	}
	if len(d.renegs) > 0 || len(evRenegs) > 0 {
		y.renegotiated++
		if d.abnormal {
			y.renegotiatedAbnormal++
		}
	}
	y.failedRenegotiations(d.abnormal, d.failed, y.failed[d.id])
}

// failedRenegotiations counts a recorded session whose renegotiation failed
// or was refused, by leg: from its events (evFailed: leg → count), else from
// its record (recFailed: client, upstream).
func (y *tlsTally) failedRenegotiations(abnormal bool, recFailed [2]bool, evFailed map[string]int) {
	found := false
	for i, leg := range []string{legClient, legUpstream} {
		if recFailed[i] || evFailed[leg] > 0 {
			y.renegFailedBy[leg]++
			found = true
		}
	}
	if !found {
		return
	}
	y.renegFailed++
	if abnormal {
		y.renegFailedAbnormal++
	}
}

// add sums a run's tally into y, the merged one.
func (y *tlsTally) add(o *tlsTally) {
	for name, l := range o.legs {
		m := y.legs[name]
		m.Handshakes += l.Handshakes
		m.Failures += l.Failures
		m.Resumed += l.Resumed
		if !l.FirstFailureAt.IsZero() && (m.FirstFailureAt.IsZero() || l.FirstFailureAt.Before(m.FirstFailureAt)) {
			m.FirstFailureAt = l.FirstFailureAt
		}
		for k, n := range l.AbnormalEnds {
			m.AbnormalEnds[k] += n
		}
		for k, n := range o.causes[name] {
			y.causes[name][k] += n
		}
		y.hsMS[name] = append(y.hsMS[name], o.hsMS[name]...)
	}
	y.points = append(y.points, o.points...)
	for k, n := range o.reneg {
		y.reneg[k] += n
	}
	y.renegotiated += o.renegotiated
	y.renegotiatedAbnormal += o.renegotiatedAbnormal
	y.renegFailed += o.renegFailed
	y.renegFailedAbnormal += o.renegFailedAbnormal
	for leg, n := range o.renegFailedBy {
		y.renegFailedBy[leg] += n
	}
}

// finishLegs computes each leg's shares, quantiles, failure concurrency,
// threshold and causes from what was gathered.
func (y *tlsTally) finishLegs() {
	pts := map[string][]concPoint{}
	for name, l := range y.legs {
		l.HandshakeMS = ownQuantiles(y.hsMS[name]) // the runs' durations, gathered by add
		delete(y.hsMS, name)                       // let it go before the points come
		pts[name] = make([]concPoint, 0, l.Handshakes)
	}
	failConc := map[string][]float64{}
	for p := range allPoints(y.points, y.open) {
		if p.reneg {
			continue
		}
		pts[p.leg()] = append(pts[p.leg()], concPoint{p.conc, p.failed})
		if p.failed {
			failConc[p.leg()] = append(failConc[p.leg()], float64(p.conc))
		}
	}
	for name, l := range y.legs {
		l.FailureShare = ratio(l.Failures, l.Handshakes)
		l.ResumedShare = ratio(l.Resumed, l.Handshakes-l.Failures)
		l.FailureConcurrency = quantilesOf(failConc[name])
		if fc := failConc[name]; len(fc) > 0 {
			l.MinFailureConc = int(slices.Min(fc))
		}
		l.Threshold = estimateThreshold(pts[name])
		pts[name] = nil
		l.Causes = []tlsCause{}
		for _, c := range sortedCounts(y.causes[name]) {
			l.Causes = append(l.Causes, tlsCause{c.Verdict, c.Count})
		}
	}
}

// renegotiationCounts lists the renegotiations by leg, then outcome.
func (y *tlsTally) renegotiationCounts() []tlsRenegotiationCount {
	out := []tlsRenegotiationCount{}
	for k, n := range y.reneg {
		out = append(out, tlsRenegotiationCount{k[0], k[1], n})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Leg != b.Leg {
			return a.Leg < b.Leg
		}
		return a.Outcome < b.Outcome
	})
	return out
}

// tlsBands groups the points by concurrency (bands as wide as the ticks of
// the drops-against-concurrency chart) and by stretch of time (a round width
// that cuts the run into at most tlsTimeBuckets); bands without any handshake
// or renegotiation are left out.
func (s *Summary) tlsBands(points []tlsRunPoints) (byConc, byTime []tlsBand) {
	byConc, byTime = []tlsBand{}, []tlsBand{}
	if countPoints(points) == 0 {
		return byConc, byTime
	}
	hi := 0
	from, to := s.Start, s.End
	for p := range allPoints(points, s.open) {
		hi = max(hi, int(p.conc))
		if from.IsZero() || p.at.Before(from) {
			from = p.at
		}
		if p.at.After(to) {
			to = p.at
		}
	}
	step := max(1, int(niceStep(yMax(float64(hi+1)), 5)))
	// A cap of every session puts a band edge just above its level.
	offset := 0
	for _, c := range s.Causes {
		if c.Cause == CauseCap && c.Scope == ScopeAll {
			offset = (c.Level + 1) % step
		}
	}
	for lo := offset - step; lo <= hi; lo += step {
		if lo+step-1 >= 0 {
			byConc = append(byConc, tlsBand{Label: groupInt(max(lo, 0)) + "–" + groupInt(lo+step-1), Low: max(lo, 0), High: lo + step - 1})
		}
	}
	width := timeBinWidth(to.Sub(from))
	start := from.Truncate(width)
	n := int(to.Sub(start)/width) + 1
	for i := range n {
		a, b := start.Add(width*time.Duration(i)), start.Add(width*time.Duration(i+1))
		byTime = append(byTime, tlsBand{Label: a.UTC().Format("15:04:05") + "–" + b.UTC().Format("15:04:05"), From: a, To: b})
	}
	for p := range allPoints(points, s.open) {
		byConc[min(max(int(p.conc)-byConc[0].High-1+step, 0)/step, len(byConc)-1)].add(p)
		byTime[min(int(p.at.Sub(start)/width), n-1)].add(p)
	}
	return nonEmpty(byConc), nonEmpty(byTime)
}

// add counts one point in b.
func (b *tlsBand) add(p tlsPoint) {
	switch {
	case p.reneg:
		b.Renegotiations++
	case p.client:
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

// nonEmpty keeps the bands that counted something.
func nonEmpty(bs []tlsBand) []tlsBand {
	out := bs[:0]
	for _, b := range bs {
		if b.ClientHandshakes+b.UpstreamHandshakes+b.Renegotiations > 0 {
			out = append(out, b)
		}
	}
	return out
}

// timeBinWidths are the widths a TLS time band may have: whole seconds and
// minutes a reader can add up.
var timeBinWidths = []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second,
	15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute,
	15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour}

// timeBinWidth is the narrowest width that cuts span into at most
// tlsTimeBuckets bands (one more at most, where the first is cut by the
// round start).
func timeBinWidth(span time.Duration) time.Duration {
	for _, w := range timeBinWidths {
		if span < w*tlsTimeBuckets {
			return w
		}
	}
	return (span/tlsTimeBuckets + time.Hour).Truncate(time.Hour)
}

// RuledOut reports whether TLS shows nothing wrong: no handshake failed on
// either leg and no renegotiation failed or was refused. The report then says
// it in one sentence, without tables of zeros.
func (t *tlsReport) RuledOut() bool {
	return t.Client.Failures == 0 && t.Upstream.Failures == 0 && t.RenegotiationFailed == 0
}

// sentence is the one-line conclusion: "TLS: 0 failures in 5,000 client
// handshakes and 5,000 upstream handshakes; no renegotiation", or "TLS: 37
// of 5,000 client handshakes failed (unknown_ca 37), all above 1,150 open
// sessions; 0 of 5,000 upstream handshakes failed; no renegotiation".
func (t *tlsReport) sentence() string {
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
		}{{string(legClient), c.Handshakes}, {string(legUpstream), u.Handshakes}} {
			if l.n > 0 {
				legs = append(legs, plural(l.n, l.name+" handshake", l.name+" handshakes"))
			}
		}
		parts = append(parts, "0 failures in "+strings.Join(legs, " and "))
	default:
		for _, l := range []struct {
			name string
			r    tlsLegReport
		}{{string(legClient), c}, {string(legUpstream), u}} {
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
		if t.RenegotiationFailed == 0 {
			parts = append(parts, "no renegotiation failed")
		} else {
			parts = append(parts, fmt.Sprintf("%s with a failed or refused renegotiation (%s), %s of them ended in 1006",
				plural(t.RenegotiationFailed, "session", "sessions"), countsText(t.RenegotiationFailedBy),
				groupInt(t.RenegotiationFailedAbnormal)))
		}
	}
	return "TLS: " + strings.Join(parts, "; ")
}

// legFailureText: "37 of 5,000 client handshakes failed (unknown_ca 37),
// all above 1,150 open sessions".
func legFailureText(leg string, l tlsLegReport) string {
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

// The legs of the TLS section, named as records name the sides.
const (
	legClient   = string(record.SideClient)
	legUpstream = string(record.SideUpstream)
)
