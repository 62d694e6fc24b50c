package report

import (
	"time"

	"github.com/wstap/wstap/capture/record"
)

// runTally sums, record by record, what the report counts of a run's
// sessions; Summarize adds the runs' tallies up.
type runTally struct {
	verdicts map[string]int
	upgraded int
	ka       keepaliveTally
	// findings by rule; latePongs and noKeepalive count sessions.
	findings               map[string]*ruleTally
	latePongs, noKeepalive int
	// tlsFail: TLS failures of the records by leg and alert; tlsFailEv:
	// those of "tls" events without a record, in file order.
	tlsFail   map[[2]string]*tlsFailTally
	tlsFailEv []tlsFailEvent
}

func newRunTally() runTally {
	return runTally{verdicts: map[string]int{}, findings: map[string]*ruleTally{},
		tlsFail: map[[2]string]*tlsFailTally{}}
}

// add counts one record; end is its end, idx its place in the file.
func (t *runTally) add(rec *record.Session, end time.Time, idx int) {
	t.verdicts[string(rec.Verdict)]++
	if upgraded(rec) {
		t.upgraded++
		t.ka.add(&rec.Keepalive)
	} else {
		t.ka.addChart(&rec.Keepalive)
	}
	t.addFindings(rec, end, idx)
	for _, l := range []struct {
		name string
		leg  *record.TLSLeg
	}{{string(record.SideClient), rec.TLS.Client}, {string(record.SideUpstream), rec.TLS.Upstream}} {
		if l.leg != nil && (l.leg.Error != "" || l.leg.Alert != "") {
			t.addTLSFailure(l.name, l.leg.Alert, l.leg.Error, end, idx)
		}
	}
}

// ruleTally counts the sessions with a finding of one rule and keeps the
// first maxRuleExamples of them by end.
type ruleTally struct {
	count int
	first []ruleExample
}

// maxRuleExamples is how many session ids a finding rule quotes.
const maxRuleExamples = 3

// ruleExample is a session with a finding: its id, the finding's severity,
// and its place in the report's order (end, run, file).
type ruleExample struct {
	end      time.Time
	run, idx int
	id       string
	severity string
}

func (e ruleExample) before(o ruleExample) bool {
	switch {
	case !e.end.Equal(o.end):
		return e.end.Before(o.end)
	case e.run != o.run:
		return e.run < o.run
	}
	return e.idx < o.idx
}

// keep inserts e among the first examples, in order, keeping maxRuleExamples.
func (rt *ruleTally) keep(e ruleExample) {
	i := len(rt.first)
	for i > 0 && e.before(rt.first[i-1]) {
		i--
	}
	if i >= maxRuleExamples {
		return
	}
	rt.first = append(rt.first, ruleExample{})
	copy(rt.first[i+1:], rt.first[i:])
	rt.first[i] = e
	if len(rt.first) > maxRuleExamples {
		rt.first = rt.first[:maxRuleExamples]
	}
}

// addFindings counts each rule once per session.
func (t *runTally) addFindings(rec *record.Session, end time.Time, idx int) {
	for i, f := range rec.Findings {
		if seenRule(rec.Findings[:i], f.Rule) {
			continue
		}
		rt := t.findings[f.Rule]
		if rt == nil {
			rt = &ruleTally{}
			t.findings[f.Rule] = rt
		}
		rt.count++
		rt.keep(ruleExample{end: end, idx: idx, id: rec.ID, severity: f.Severity})
		switch f.Rule {
		case "late-pong":
			t.latePongs++
		case "no-keepalive":
			t.noKeepalive++
		}
	}
}

func seenRule(fs []record.Finding, rule string) bool {
	for _, f := range fs {
		if f.Rule == rule {
			return true
		}
	}
	return false
}

// tlsFailTally counts the TLS failures of one leg and alert, with the error
// of the first by end.
type tlsFailTally struct {
	count   int
	example string
	end     time.Time
	idx     int
}

// tlsFailEvent is a failed handshake that only a "tls" event holds.
type tlsFailEvent struct{ leg, alert, err string }

func (t *runTally) addTLSFailure(leg, alert, errText string, end time.Time, idx int) {
	if alert == "" {
		alert = "(none)"
	}
	k := [2]string{leg, alert}
	c := t.tlsFail[k]
	if c == nil {
		c = &tlsFailTally{example: errText, end: end, idx: idx}
		t.tlsFail[k] = c
	} else if end.Before(c.end) {
		c.example, c.end, c.idx = errText, end, idx
	}
	c.count++
}

// unrecordedTLS keeps the failed handshakes of "tls" events whose session
// has no record (a TLS error before any request).
func (t *runTally) unrecordedTLS(evs []loggedEvent, ids map[string]bool) {
	for _, e := range evs {
		if _, ok := ids[e.Session]; !ok || e.Session == "" {
			t.tlsFailEv = append(t.tlsFailEv, tlsFailEvent{e.Leg, e.Alert, e.Error})
		}
	}
}
