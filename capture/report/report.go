package report

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/record"
)

// maxTimelineEvents caps the events kept per abnormal session for its timeline.
const maxTimelineEvents = 1000

// Run is one run dir as the report reads it: the session records, the
// run.json manifest and the figures the report needs from events.jsonl.
type Run struct {
	Dir      string
	Manifest *capture.RunInfo // run.json; nil when missing or unreadable
	Sessions []record.Session
	// Timelines holds, by session id, the events of the abnormal sessions in
	// file order (at most maxTimelineEvents each).
	Timelines map[string][]loggedEvent
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
}

// UnmarshalJSON reads an events.jsonl line; see eventTime for "time".
func (e *loggedEvent) UnmarshalJSON(b []byte) error {
	type plain loggedEvent // without this method
	var v struct {
		plain
		Time any `json:"time"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	t, err := eventTime(v.Time)
	if err != nil {
		return err
	}
	*e = loggedEvent(v.plain)
	e.Time = t
	return nil
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

// LoadRun reads a run dir. Missing files and lines that do not parse are
// tolerated and listed in Run.Problems; a dir that is missing or is not a
// run dir is an error naming it.
func LoadRun(dir string) (*Run, error) {
	d, err := capture.OpenRunDir(dir)
	if err != nil {
		return nil, err
	}
	r := &Run{Dir: dir, Timelines: map[string][]loggedEvent{},
		HTTPStatus: map[int]int{}, Rejected: map[string]int{}}
	r.loadManifest(d)
	for _, name := range []string{capture.SessionsFile, capture.EventsFile} {
		if !d.Has(name) {
			r.Problems = append(r.Problems, d.Path(name)+": missing")
		}
	}
	if err := d.Sessions(r.addSession); err != nil {
		return nil, err
	}
	abnormal := map[string]bool{}
	for _, s := range r.Sessions {
		if s.Abnormal {
			abnormal[s.ID] = true
		}
	}
	err = capture.Lines(d, capture.EventsFile, func(e *loggedEvent) error {
		r.addEvent(e, abnormal)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if d.Bad.Count > 0 {
		r.Problems = append(r.Problems, dir+": "+d.Bad.String())
	}
	return r, nil
}

// loadManifest reads run.json into r.Manifest, what went wrong into r.Problems.
func (r *Run) loadManifest(d *capture.RunDir) {
	if !d.Has(capture.RunFile) {
		r.Problems = append(r.Problems, d.Path(capture.RunFile)+": missing")
		return
	}
	m, err := d.Info()
	r.Manifest = m
	if err != nil {
		r.Problems = append(r.Problems, err.Error())
	}
}

func (r *Run) addSession(s *record.Session) error {
	r.Sessions = append(r.Sessions, *s)
	return nil
}

func (r *Run) addEvent(e *loggedEvent, abnormal map[string]bool) {
	switch e.Event {
	case "http":
		r.HTTPStatus[e.Status]++
	case "rejected":
		r.Rejected[e.Reason]++
	case "accept-error":
		r.AcceptErrors++
	case "tls":
		if e.Error != "" || e.Alert != "" {
			r.TLSErrors = append(r.TLSErrors, *e)
		}
	case "tls-renegotiation":
		r.Renegotiations = append(r.Renegotiations, *e)
	}
	if abnormal[e.Session] && len(r.Timelines[e.Session]) < maxTimelineEvents {
		r.Timelines[e.Session] = append(r.Timelines[e.Session], *e)
	}
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

	runs  []*Run
	sess  []sessionRef      // every session of every run, in end order
	steps []concurrencyStep // open upgraded sessions over time, all runs
	facts []*facts          // what the causes need of each session, in end order
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

// sessionRef is one session of the merged runs with its merged concurrency.
type sessionRef struct {
	run  int
	rec  *record.Session
	end  time.Time
	conc int
}

// concurrencyStep: from At on, Open upgraded sessions were open.
type concurrencyStep struct {
	At   time.Time
	Open int
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
		s.facts[i] = factsOf(ref.run, ref.rec)
	}
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
	for i, r := range s.runs {
		rs := runSummary{Dir: r.Dir, Sessions: len(r.Sessions)}
		if m := r.Manifest; m != nil {
			rs.Version, rs.Mode, rs.Upstream, rs.Host = m.Version, m.Mode, m.Upstream, m.Host
			rs.Start = m.Start
			if m.End != nil {
				rs.End = *m.End
			}
			addCounters(&s.Counters, m.Counters)
		}
		for j := range r.Sessions {
			rec := &r.Sessions[j]
			end := endTime(rec)
			s.sess = append(s.sess, sessionRef{run: i, rec: rec, end: end})
			if rs.Start.IsZero() || rec.Start.Before(rs.Start) {
				rs.Start = rec.Start
			}
			if end.After(rs.End) {
				rs.End = end
			}
		}
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
	sort.SliceStable(s.sess, func(i, j int) bool { return s.sess[i].end.Before(s.sess[j].end) })
	s.Sessions = len(s.sess)
}

// mergeConcurrency gives every upgraded session its concurrency at its end
// across all runs: its own run's concurrent_at_end plus the sessions of the
// other runs open at that instant (replayed from their start and end times),
// and builds the open-sessions-over-time steps.
func (s *Summary) mergeConcurrency() {
	starts := make([][]time.Time, len(s.runs))
	ends := make([][]time.Time, len(s.runs))
	var deltas []concurrencyStep
	for _, ref := range s.sess {
		if !upgraded(ref.rec) {
			continue
		}
		starts[ref.run] = append(starts[ref.run], ref.rec.Start)
		ends[ref.run] = append(ends[ref.run], ref.end)
		deltas = append(deltas, concurrencyStep{ref.rec.Start, 1}, concurrencyStep{ref.end, -1})
	}
	for i := range s.runs {
		sort.Slice(starts[i], func(a, b int) bool { return starts[i][a].Before(starts[i][b]) })
		sort.Slice(ends[i], func(a, b int) bool { return ends[i][a].Before(ends[i][b]) })
	}
	// openAt counts run i's sessions started at or before t and not yet ended
	// (inclusive: the session ending at t itself is counted).
	openAt := func(i int, t time.Time) int {
		st := sort.Search(len(starts[i]), func(k int) bool { return starts[i][k].After(t) })
		en := sort.Search(len(ends[i]), func(k int) bool { return !ends[i][k].Before(t) })
		return st - en
	}
	for k := range s.sess {
		ref := &s.sess[k]
		if !upgraded(ref.rec) {
			continue
		}
		own := ref.rec.ConcurrentAtEnd
		if own <= 0 {
			own = openAt(ref.run, ref.end)
		}
		ref.conc = own
		for i := range s.runs {
			if i != ref.run {
				ref.conc += openAt(i, ref.end)
			}
		}
	}
	sort.SliceStable(deltas, func(i, j int) bool {
		if deltas[i].At.Equal(deltas[j].At) {
			return deltas[i].Open > deltas[j].Open // starts before ends at one instant
		}
		return deltas[i].At.Before(deltas[j].At)
	})
	open := 0
	for _, d := range deltas {
		open += d.Open
		s.steps = append(s.steps, concurrencyStep{d.At, open})
		s.Concurrency.Peak = max(s.Concurrency.Peak, open)
	}
}

func (s *Summary) countVerdicts() {
	n := map[string]int{}
	for _, ref := range s.sess {
		n[string(ref.rec.Verdict)]++
		if upgraded(ref.rec) {
			s.Upgraded++
		}
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
	for _, ref := range s.sess {
		if !ref.rec.Abnormal {
			continue
		}
		s.Abnormal++
		s.DroppedBy[string(ref.rec.End.First)]++
		s.DroppedHow[strings.TrimSpace(string(ref.rec.End.First)+" "+string(ref.rec.End.How))]++
		if ref.rec.End.First == record.SideProxy && ref.rec.End.How != record.HowShutdown {
			s.ProxyCaused++
		}
		if s.Concurrency.FirstDropAt.IsZero() {
			s.Concurrency.FirstDropAt, s.Concurrency.AtFirstDrop = ref.end, ref.conc
		}
	}
	if s.Upgraded > 0 {
		s.AbnormalShare = float64(s.Abnormal) / float64(s.Upgraded)
	}
}

// estimateThreshold finds the concurrency level above which drops
// concentrate (see threshold). conc[i] is a session's concurrency at its end,
// drop[i] whether it ended in 1006. It returns nil when there are fewer than
// three drops, when the split is no better than chance, or when the drop rate
// above the split is not at least twice the rate below it.
func estimateThreshold(conc []int, drop []bool) *threshold {
	type point struct {
		c    int
		drop bool
	}
	pts := make([]point, len(conc))
	drops := 0
	for i := range conc {
		pts[i] = point{conc[i], drop[i]}
		if drop[i] {
			drops++
		}
	}
	others := len(pts) - drops
	if drops < 3 || others < 1 {
		return nil
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].c < pts[j].c })
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
			best = &threshold{Level: pts[i].c, Below: below, BelowDrops: belowDrops,
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

func (s *Summary) summarizeKeepalive() {
	var c2uInt, u2cInt, c2uRTT, u2cRTT []float64
	var c2uMax, u2cMax float64
	k := &s.Keepalive
	for _, ref := range s.sess {
		r := ref.rec
		if !upgraded(r) {
			continue
		}
		ka := &r.Keepalive
		k.UnansweredPings += ka.UnansweredPings
		k.ClientToUpstream.Pings += ka.ClientPings
		k.UpstreamToClient.Pings += ka.UpstreamPings
		if ka.ClientPings > 0 {
			k.ClientToUpstream.SessionsPinging++
		} else {
			k.ClientToUpstream.SessionsSilent++
		}
		if ka.UpstreamPings > 0 {
			k.UpstreamToClient.SessionsPinging++
		} else {
			k.UpstreamToClient.SessionsSilent++
		}
		if ka.ClientPingIntervalMS != nil {
			c2uInt = append(c2uInt, ka.ClientPingIntervalMS.P50)
		}
		if ka.UpstreamPingIntervalMS != nil {
			u2cInt = append(u2cInt, ka.UpstreamPingIntervalMS.P50)
		}
		// The upstream answers the client's pings; the client the upstream's.
		up, cl := ka.UpstreamPongRTTMS, ka.ClientPongRTTMS
		if up == nil && cl == nil && ka.PongRTTMS != nil {
			if ka.ClientPings > 0 && ka.UpstreamPings == 0 {
				up = ka.PongRTTMS
			} else if ka.UpstreamPings > 0 && ka.ClientPings == 0 {
				cl = ka.PongRTTMS
			}
		}
		if up != nil {
			c2uRTT = append(c2uRTT, up.P50)
			c2uMax = max(c2uMax, up.Max)
		}
		if cl != nil {
			u2cRTT = append(u2cRTT, cl.P50)
			u2cMax = max(u2cMax, cl.Max)
		}
	}
	k.ClientToUpstream.IntervalMS = quantilesOf(c2uInt)
	k.UpstreamToClient.IntervalMS = quantilesOf(u2cInt)
	k.ClientToUpstream.PongRTTMS = quantilesOf(c2uRTT)
	k.ClientToUpstream.PongRTTMS.Max = max(k.ClientToUpstream.PongRTTMS.Max, c2uMax)
	k.UpstreamToClient.PongRTTMS = quantilesOf(u2cRTT)
	k.UpstreamToClient.PongRTTMS.Max = max(k.UpstreamToClient.PongRTTMS.Max, u2cMax)
}

// countFindings counts sessions per finding rule, with example session ids.
func (s *Summary) countFindings() {
	byRule := map[string]*ruleCount{}
	for _, ref := range s.sess {
		seen := map[string]bool{}
		for _, f := range ref.rec.Findings {
			if seen[f.Rule] {
				continue
			}
			seen[f.Rule] = true
			rc := byRule[f.Rule]
			if rc == nil {
				rc = &ruleCount{Rule: f.Rule, Severity: f.Severity}
				byRule[f.Rule] = rc
			}
			rc.Count++
			if len(rc.Examples) < 3 {
				rc.Examples = append(rc.Examples, ref.rec.ID)
			}
		}
		if seen["late-pong"] {
			s.Keepalive.LatePongs++
		}
		if seen["no-keepalive"] {
			s.Keepalive.NoKeepalive++
		}
	}
	for _, rc := range byRule {
		s.Findings = append(s.Findings, *rc)
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
	type key struct{ leg, alert string }
	n := map[key]*tlsCount{}
	add := func(leg, alert, errText string) {
		if alert == "" {
			alert = "(none)"
		}
		k := key{leg, alert}
		if n[k] == nil {
			n[k] = &tlsCount{Leg: leg, Alert: alert, Example: errText}
		}
		n[k].Count++
	}
	for i, r := range s.runs {
		ids := map[string]bool{}
		for _, ref := range s.sess {
			if ref.run != i {
				continue
			}
			ids[ref.rec.ID] = true
			for _, l := range []struct {
				name string
				leg  *record.TLSLeg
			}{{string(record.SideClient), ref.rec.TLS.Client}, {string(record.SideUpstream), ref.rec.TLS.Upstream}} {
				if l.leg != nil && (l.leg.Error != "" || l.leg.Alert != "") {
					add(l.name, l.leg.Alert, l.leg.Error)
				}
			}
		}
		for _, e := range r.TLSErrors {
			if !ids[e.Session] || e.Session == "" {
				add(e.Leg, e.Alert, e.Error)
			}
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
	if len(v) == 0 {
		return quantiles{}
	}
	v = append([]float64(nil), v...)
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
