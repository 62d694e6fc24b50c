package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/record"
)

// maxTimelineEvents caps the events kept per abnormal session for its timeline.
const maxTimelineEvents = 1000

// Run is one run dir as the report reads it (LoadRun): what it keeps of
// each session, the sums of its records, the run.json manifest and the
// figures the report needs from events.jsonl.
type Run struct {
	Dir      string
	Manifest *capture.RunInfo // run.json; nil when missing or unreadable
	// HTTPStatus counts the non-WebSocket requests by status ("http" events).
	HTTPStatus map[int]int
	// Rejected counts the requests wstap refused itself, by reason.
	Rejected map[string]int
	// TLSErrors are the "tls" events that carry an error or an alert.
	TLSErrors []loggedEvent
	// Renegotiations are the "tls-renegotiation" events.
	Renegotiations []loggedEvent
	// AcceptErrors counts "accept-error" events.
	AcceptErrors int
	// Problems says what could not be read: missing files, unparsable lines.
	Problems []string

	store   sessionStore // every session, in file order
	scratch lineScratch
	strs    interner
	labels  labeler
	tally   runTally
	tls     *tlsTally
	open    openTimes // start and end of the upgraded sessions
	// start and end: run.json's, widened to the sessions'.
	start, end time.Time
	// cands: the records of the first 1006 sessions; timelines holds, by
	// session id, their pings and pongs among their first
	// maxTimelineEvents events.
	cands     candidates
	timelines map[string][]timelineEvent
}

// addCounters sums o into c (merged runs).
func addCounters(c *capture.Counters, o capture.Counters) {
	c.Sessions += o.Sessions
	c.Abnormal += o.Abnormal
	c.Rejected += o.Rejected
	c.HTTPRequests += o.HTTPRequests
	c.EventsDropped += o.EventsDropped
	c.PacketsDropped += o.PacketsDropped
	c.AcceptErrors += o.AcceptErrors
	c.SessionsLost += o.SessionsLost
}

// loggedEvent is one line of events.jsonl with the fields the report uses.
type loggedEvent struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Session string    `json:"session"`
	Event   string    `json:"event"`

	Dir       string  `json:"dir,omitempty"`
	Len       int     `json:"len,omitempty"`
	RTTMS     float64 `json:"rtt_ms,omitempty"`
	Code      int     `json:"code,omitempty"`
	Reason    string  `json:"reason,omitempty"`
	Status    int     `json:"status,omitempty"`
	LatencyMS float64 `json:"latency_ms,omitempty"`
	Leg       string  `json:"leg,omitempty"`
	Alert     string  `json:"alert,omitempty"`
	Error     string  `json:"error,omitempty"`
	Method    string  `json:"method,omitempty"`
	URL       string  `json:"url,omitempty"`
	Rule      string  `json:"rule,omitempty"`
	Verdict   string  `json:"verdict,omitempty"`
	First     string  `json:"first,omitempty"`
	How       string  `json:"how,omitempty"`
	Outcome   string  `json:"outcome,omitempty"`
	By        string  `json:"by,omitempty"` // "wstap" on an http event wstap answered itself
}

// eventTime reads zerolog's "time" field: RFC 3339 text, or a Unix time in
// seconds or milliseconds when the logger was set up that way.
func eventTime(v any) (time.Time, error) {
	switch t := v.(type) {
	case string:
		return time.Parse(time.RFC3339Nano, t)
	case float64:
		if t > 1e11 { // milliseconds: 1e11 s is the year 5138
			return time.UnixMilli(int64(t)), nil
		}
		sec := int64(t)
		return time.Unix(sec, int64((t-float64(sec))*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("time %v is neither RFC 3339 nor a number", v)
}

// upgraded reports whether the session got its 101 (only those can end in 1006).
func upgraded(s *record.Session) bool {
	return s.ClientCloseCode != nil || s.Handshake.Status == 101
}

// endTime is when the session ended: end.at, else start + duration.
func endTime(s *record.Session) time.Time {
	if !s.End.At.IsZero() {
		return s.End.At
	}
	return s.Start.Add(time.Duration(s.DurationMS * float64(time.Millisecond)))
}

// groupInt writes n with thousands separators: 1203 → "1,203".
func groupInt(n int) string { return Thousands(int64(n)) }

// Thousands writes n with thousands separators: 20000 → "20,000".
func Thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Summary is the report of one or more runs merged on wall-clock time. It
// marshals as the `wstap report --json` document.
type Summary struct {
	Runs     []runSummary `json:"runs"`
	Start    time.Time    `json:"start"`
	End      time.Time    `json:"end"`
	Sessions int          `json:"sessions"`
	// Upgraded counts the sessions that got a 101: only they can end in 1006.
	Upgraded int            `json:"upgraded"`
	Verdicts []verdictCount `json:"verdicts"`

	// Abnormal counts the sessions whose client saw 1006; AbnormalShare is
	// their share of the upgraded sessions.
	Abnormal      int     `json:"abnormal"`
	AbnormalShare float64 `json:"abnormal_share"`
	// DroppedBy counts the abnormal sessions by end.first; DroppedHow by
	// "first how" ("upstream eof").
	DroppedBy  map[string]int `json:"dropped_by"`
	DroppedHow map[string]int `json:"dropped_how"`
	// ProxyCaused counts the 1006 sessions wstap itself ended (end.first
	// proxy, not at its shutdown: verdict proxy-error), reported first and
	// apart: a diagnostic proxy must never hide a drop it caused.
	ProxyCaused int `json:"proxy_caused"`

	// Causes attributes every 1006 session to one cause, largest first;
	// Explanations judges the seven usual explanations, in their order.
	Causes       []*Cause      `json:"causes"`
	Explanations []Explanation `json:"explanations"`
	// Plan is the JMeter plan's check beside the causes (report --plan).
	Plan *PlanCheck `json:"plan,omitempty"`

	Concurrency concurrency `json:"concurrency"`
	Keepalive   keepalives  `json:"keepalive"`
	Findings    []ruleCount `json:"findings"`
	TLSFailures []tlsCount  `json:"tls_failures"`
	// TLS is the TLS section: handshakes, failures by cause, concurrency
	// and time, renegotiations, and how the TLS of the 1006 sessions ended.
	TLS      tlsReport      `json:"tls"`
	HTTP     httpCounts     `json:"http"`
	Rejected map[string]int `json:"rejected"`
	// Counters are the sums of the run.json counters.
	Counters     capture.Counters `json:"counters"`
	AcceptErrors int              `json:"accept_error_events"`
	Problems     []string         `json:"problems"`

	runs []*Run
	sess []*session // every session of every run, in end order
	// open: the start and end of every upgraded session, all runs;
	// drops: the 1006 sessions in end order, with their concurrency.
	open  *openTimes
	drops []dropRef
	facts []*facts // what the causes need of each session, in end order
	// idleLowMS is the shortest client silence the idle timeout dropped.
	idleLowMS float64
}

// runSummary names one merged run.
type runSummary struct {
	Dir      string    `json:"dir"`
	Version  string    `json:"version,omitempty"`
	Mode     string    `json:"mode,omitempty"`
	Upstream string    `json:"upstream,omitempty"`
	Host     string    `json:"host,omitempty"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Sessions int       `json:"sessions"`
}

// verdictCount is the number of sessions with one verdict.
type verdictCount struct {
	Verdict string `json:"verdict"`
	Count   int    `json:"count"`
}

// quantiles summarises a sample.
type quantiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	Max float64 `json:"max"`
}

// concurrency is how many upgraded sessions were open, merged across runs.
type concurrency struct {
	Peak        int       `json:"peak"`
	FirstDropAt time.Time `json:"first_drop_at,omitzero"`
	// AtFirstDrop is the concurrency when the first 1006 session ended.
	AtFirstDrop int `json:"at_first_drop"`
}

// threshold is the concurrency level that best separates the sessions that
// ended in 1006 from those that did not: the split of concurrent_at_end that
// maximises the difference between the share of drops above it and the share
// of other sessions above it (Youden's J, the Kolmogorov–Smirnov distance of
// the two groups). It stays nil unless drops concentrate above the level.
type threshold struct {
	Level      int     `json:"level"`
	Below      int     `json:"below"`
	BelowDrops int     `json:"below_drops"`
	Above      int     `json:"above"`
	AboveDrops int     `json:"above_drops"`
	Separation float64 `json:"separation"`
}

// keepalives is the keep-alive ledger of the run, per direction.
type keepalives struct {
	ClientToUpstream dirKeepalive `json:"client_to_upstream"`
	UpstreamToClient dirKeepalive `json:"upstream_to_client"`
	// PlatformPingEveryMS is the upstream's median ping interval, and
	// IdleTimeoutMS the idle timeout the causes inferred (0 when none): the
	// measures Groups are judged by.
	PlatformPingEveryMS float64          `json:"platform_ping_every_ms"`
	IdleTimeoutMS       float64          `json:"idle_timeout_ms"`
	Groups              []keepaliveGroup `json:"by_outcome"`
	// LatePongs and NoKeepalive count the sessions with those findings
	// (thresholds --late-pong and --no-keepalive).
	LatePongs       int   `json:"late_pong_sessions"`
	NoKeepalive     int   `json:"no_keepalive_sessions"`
	UnansweredPings int64 `json:"unanswered_pings"`
}

// dirKeepalive is the ping rhythm of pings sent one way and how the other
// side answered them.
type dirKeepalive struct {
	Pings           int64 `json:"pings"`
	SessionsPinging int   `json:"sessions_pinging"`
	SessionsSilent  int   `json:"sessions_without_pings"`
	// IntervalMS: over sessions, their median ping interval.
	IntervalMS quantiles `json:"interval_ms"`
	// PongRTTMS: over sessions, their median pong round trip (Max is the
	// largest single round trip).
	PongRTTMS quantiles `json:"pong_rtt_ms"`
}

// ruleCount counts the sessions with a finding of one rule.
type ruleCount struct {
	Rule     string   `json:"rule"`
	Severity string   `json:"severity"`
	Count    int      `json:"count"`
	Examples []string `json:"examples"`
}

// tlsCount counts the TLS failures of one leg with one alert.
type tlsCount struct {
	Leg     string `json:"leg"`
	Alert   string `json:"alert"`
	Count   int    `json:"count"`
	Example string `json:"example_error"`
}

// httpCounts counts the non-WebSocket requests by status.
type httpCounts struct {
	Requests  int           `json:"requests"`
	ByStatus  []statusCount `json:"by_status"`
	Throttled int           `json:"throttled_429"`
}

// statusCount is the number of requests answered with one status.
type statusCount struct {
	Status int `json:"status"`
	Count  int `json:"count"`
}

// Summarize merges runs on wall-clock time: counts are sums, concurrency is
// replayed from the start and end times of the sessions of every run.
func Summarize(runs ...*Run) *Summary {
	s := &Summary{runs: runs, DroppedBy: map[string]int{}, DroppedHow: map[string]int{},
		Rejected: map[string]int{}, Findings: []ruleCount{}, TLSFailures: []tlsCount{},
		HTTP: httpCounts{ByStatus: []statusCount{}}, Problems: []string{}}
	s.collect()
	s.mergeConcurrency()
	s.countVerdicts()
	s.summarizeDrops()
	s.summarizeKeepalive()
	s.countFindings()
	s.countTLS()
	s.attribute()
	s.summarizeTLS() // its concurrency bands put a cap's level on an edge
	s.countHTTP()
	s.explain()
	s.summarizeKeepaliveGroups()
	return s
}

// attribute finds the causes of the 1006 sessions.
func (s *Summary) attribute() {
	s.facts = make([]*facts, len(s.sess))
	for i, ref := range s.sess {
		s.facts[i] = &ref.facts
	}
	s.sess = nil // in end order in s.facts from here on
	mergeOpenConcurrency(s.facts, len(s.runs))
	s.Causes = inferCauses(s.facts)
}

// explain judges the seven explanations.
func (s *Summary) explain() {
	failures := map[string]int{}
	for _, f := range s.TLSFailures {
		failures[f.Leg] += f.Count
	}
	status := map[int]int{}
	for _, st := range s.HTTP.ByStatus {
		status[st.Status] = st.Count
	}
	s.Explanations = explain(&explainInput{all: s.facts, causes: s.Causes,
		acceptErrors: max(s.AcceptErrors, int(s.Counters.AcceptErrors)), httpStatus: status, tlsFailures: failures, tls: &s.TLS})
}

// collect lists the runs and their sessions and sums the run-level counters.
func (s *Summary) collect() {
	n := 0
	for _, r := range s.runs {
		n += r.store.n
	}
	s.sess = make([]*session, 0, n)
	for i, r := range s.runs {
		rs := runSummary{Dir: r.Dir, Sessions: r.store.n, Start: r.start, End: r.end}
		if m := r.Manifest; m != nil {
			rs.Version, rs.Mode, rs.Upstream, rs.Host = m.Version, m.Mode, m.Upstream, m.Host
			addCounters(&s.Counters, m.Counters)
		}
		r.store.each(func(_ int, ses *session) {
			ses.run = int32(i)
			ses.facts.concOpen, ses.facts.credConc = ses.recConcOpen, ses.recCredConc
			s.sess = append(s.sess, ses)
		})
		if !rs.Start.IsZero() && (s.Start.IsZero() || rs.Start.Before(s.Start)) {
			s.Start = rs.Start
		}
		if rs.End.After(s.End) {
			s.End = rs.End
		}
		s.Runs = append(s.Runs, rs)
		for k, v := range r.Rejected {
			s.Rejected[k] += v
		}
		s.AcceptErrors += r.AcceptErrors
		s.Problems = append(s.Problems, r.Problems...)
	}
	slices.SortStableFunc(s.sess, func(a, b *session) int { return cmp.Compare(a.end, b.end) })
	s.Sessions = len(s.sess)
}

func (s *Summary) countVerdicts() {
	n := map[string]int{}
	for _, r := range s.runs {
		for v, c := range r.tally.verdicts {
			n[v] += c
		}
		s.Upgraded += r.tally.upgraded
	}
	for _, v := range record.Verdicts {
		s.Verdicts = append(s.Verdicts, verdictCount{string(v), n[string(v)]})
		delete(n, string(v))
	}
	var other []string
	for v := range n {
		other = append(other, v)
	}
	sort.Strings(other)
	for _, v := range other {
		s.Verdicts = append(s.Verdicts, verdictCount{v, n[v]})
	}
}

// summarizeDrops counts the 1006 sessions by who ended them and how.
func (s *Summary) summarizeDrops() {
	for _, ref := range s.drops {
		s.Abnormal++
		s.DroppedBy[ref.first.String()]++
		s.DroppedHow[strings.TrimSpace(ref.first.String()+" "+ref.how.String())]++
		if ref.first == labelProxy && ref.how != labelShutdown {
			s.ProxyCaused++
		}
		if s.Concurrency.FirstDropAt.IsZero() {
			s.Concurrency.FirstDropAt, s.Concurrency.AtFirstDrop = ref.endTime(), ref.conc
		}
	}
	if s.Upgraded > 0 {
		s.AbnormalShare = float64(s.Abnormal) / float64(s.Upgraded)
	}
}

// concPoint is a session or a handshake at the concurrency c: drop, it
// ended in 1006 or failed.
type concPoint struct {
	c    int32
	drop bool
}

// estimateThreshold finds the concurrency level above which drops
// concentrate (see threshold): each point is a concurrency and whether it
// dropped (or failed); pts is sorted in place. It returns nil when there are
// fewer than three drops, when the split is no better than chance, or when
// the drop rate above the split is not at least twice the rate below it.
func estimateThreshold(pts []concPoint) *threshold {
	drops := 0
	for _, p := range pts {
		if p.drop {
			drops++
		}
	}
	others := len(pts) - drops
	if drops < 3 || others < 1 {
		return nil
	}
	slices.SortFunc(pts, func(a, b concPoint) int { return cmp.Compare(a.c, b.c) })
	var best *threshold
	belowDrops, below := 0, 0
	for i := 0; i < len(pts)-1; i++ {
		below++
		if pts[i].drop {
			belowDrops++
		}
		if pts[i].c == pts[i+1].c {
			continue // split only between distinct levels
		}
		// J = share of drops above − share of other sessions above.
		j := float64(drops-belowDrops)/float64(drops) - float64(others-(below-belowDrops))/float64(others)
		if best == nil || j > best.Separation {
			best = &threshold{Level: int(pts[i].c), Below: below, BelowDrops: belowDrops,
				Above: len(pts) - below, AboveDrops: drops - belowDrops, Separation: j}
		}
	}
	// Random labels also separate a little: require the two-sample
	// Kolmogorov–Smirnov critical value at α = 0.05, c(α)·√((n+m)/(n·m)).
	critical := 1.358 * math.Sqrt(float64(drops+others)/float64(drops*others))
	if best == nil || best.Separation < critical {
		return nil
	}
	rateBelow := float64(best.BelowDrops) / float64(best.Below)
	rateAbove := float64(best.AboveDrops) / float64(best.Above)
	if rateAbove < 2*rateBelow {
		return nil
	}
	return best
}

// countFindings counts sessions per finding rule, with the ids of the first
// sessions by end.
func (s *Summary) countFindings() {
	byRule := map[string]*ruleTally{}
	for i, r := range s.runs {
		for rule, rt := range r.tally.findings {
			m := byRule[rule]
			if m == nil {
				m = &ruleTally{}
				byRule[rule] = m
			}
			m.count += rt.count
			for _, e := range rt.first {
				e.run = i
				m.keep(e)
			}
		}
		s.Keepalive.LatePongs += r.tally.latePongs
		s.Keepalive.NoKeepalive += r.tally.noKeepalive
	}
	for rule, m := range byRule {
		rc := ruleCount{Rule: rule, Severity: m.first[0].severity, Count: m.count}
		for _, e := range m.first {
			rc.Examples = append(rc.Examples, e.id)
		}
		s.Findings = append(s.Findings, rc)
	}
	sort.Slice(s.Findings, func(i, j int) bool {
		a, b := s.Findings[i], s.Findings[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Rule < b.Rule
	})
}

// countTLS counts TLS failures by leg and alert: from the session records,
// and from "tls" events of sessions that have no record.
func (s *Summary) countTLS() {
	n := map[[2]string]*tlsCount{}
	add := func(k [2]string, count int, example string) {
		if n[k] == nil {
			n[k] = &tlsCount{Leg: k[0], Alert: k[1], Example: example}
		}
		n[k].Count += count
	}
	for _, r := range s.runs {
		for k, c := range r.tally.tlsFail {
			add(k, c.count, c.example)
		}
		for _, e := range r.tally.tlsFailEv {
			alert := e.alert
			if alert == "" {
				alert = "(none)"
			}
			add([2]string{e.leg, alert}, 1, e.err)
		}
	}
	for _, c := range n {
		s.TLSFailures = append(s.TLSFailures, *c)
	}
	sort.Slice(s.TLSFailures, func(i, j int) bool {
		a, b := s.TLSFailures[i], s.TLSFailures[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Leg+a.Alert < b.Leg+b.Alert
	})
}

func (s *Summary) countHTTP() {
	n := map[int]int{}
	for _, r := range s.runs {
		for st, c := range r.HTTPStatus {
			n[st] += c
			s.HTTP.Requests += c
		}
	}
	for st, c := range n {
		s.HTTP.ByStatus = append(s.HTTP.ByStatus, statusCount{st, c})
	}
	sort.Slice(s.HTTP.ByStatus, func(i, j int) bool { return s.HTTP.ByStatus[i].Status < s.HTTP.ByStatus[j].Status })
	s.HTTP.Throttled = n[429]
}

// quantilesOf summarises a sample (linear interpolation between ranks).
func quantilesOf(v []float64) quantiles {
	return ownQuantiles(append([]float64(nil), v...))
}

// ownQuantiles is quantilesOf for a sample the caller owns: it sorts v in
// place instead of a copy (a million sessions' sample is 8 MB).
func ownQuantiles(v []float64) quantiles {
	if len(v) == 0 {
		return quantiles{}
	}
	sort.Float64s(v)
	return quantiles{N: len(v), P50: rankValue(v, 0.5), P90: rankValue(v, 0.9), Max: v[len(v)-1]}
}

// rankValue is the q-quantile of sorted v.
func rankValue(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	i := int(pos)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (pos-float64(i))*(sorted[i+1]-sorted[i])
}
