package report

import (
	"fmt"
	"strings"
)

// Explanation verdicts.
const (
	Confirmed = "confirmed"
	RuledOut  = "ruled-out"
	NoData    = "no-data"
)

// Explanation is the run's answer to one of the seven explanations a user of
// wstap is offered for 1006 (docs/records.md, "Causes and explanations").
type Explanation struct {
	N       int    `json:"n"`
	Name    string `json:"name"`
	Verdict string `json:"verdict"`
	Detail  string `json:"detail"`
}

// explainInput is what the seven answers are judged on.
type explainInput struct {
	all          []*facts
	causes       []*Cause
	acceptErrors int
	httpStatus   map[int]int
	// tlsFailures counts the failed TLS handshakes by leg.
	tlsFailures map[string]int
	// tls is the TLS section (renegotiation per session); nil: none.
	tls *tlsReport
}

// explain answers the seven explanations, in the order of the list.
func explain(in *explainInput) []Explanation {
	byCause := map[string][]*Cause{}
	for _, c := range in.causes {
		byCause[c.Cause] = append(byCause[c.Cause], c)
	}
	up := 0
	for _, f := range in.all {
		if f.upgraded {
			up++
		}
	}
	steps := []struct {
		name  string
		judge func(*explainInput, map[string][]*Cause, int) (string, string)
	}{
		{"idle-timeout", explainIdle},
		{"late-pong", explainLatePong},
		{"handshake", explainHandshake},
		{"tls", explainTLS},
		{"concurrency-cap", explainCap},
		{"load-client", explainLoadClient},
		{"rest-throttling", explainREST},
	}
	out := make([]Explanation, len(steps))
	for i, s := range steps {
		v, d := s.judge(in, byCause, up)
		out[i] = Explanation{N: i + 1, Name: s.name, Verdict: v, Detail: d}
	}
	return out
}

func explainIdle(in *explainInput, by map[string][]*Cause, up int) (string, string) {
	if c := by[CauseIdle]; len(c) > 0 {
		return Confirmed, c[0].Evidence
	}
	if up == 0 {
		return NoData, "no session was upgraded"
	}
	longest := 0.0
	for _, f := range in.all {
		if f.upgraded && !f.upstreamDrop() {
			longest = max(longest, f.clientMaxSilenceMS)
		}
	}
	drops := countIf(in.all, (*facts).upstreamDrop)
	if drops == 0 {
		return RuledOut, fmt.Sprintf("the upstream dropped no session; clients were silent (pongs not counted) up to %s and their sessions lived", secondsText(longest))
	}
	silence := quantilesOf(valuesOf(filter(in.all, (*facts).upstreamDrop), func(f *facts) float64 { return f.clientSilenceMS }))
	return RuledOut, fmt.Sprintf("the upstream's %s drops do not gather at one client silence (p50 %s, p90 %s, max %s), and sessions silent up to %s lived",
		groupInt(drops), secondsText(silence.P50), secondsText(silence.P90), secondsText(silence.Max), secondsText(longest))
}

func explainLatePong(in *explainInput, by map[string][]*Cause, up int) (string, string) {
	if c := by[CausePing]; len(c) > 0 {
		return Confirmed, c[0].Evidence
	}
	pinged := filter(in.all, func(f *facts) bool { return f.upgraded && f.upstreamPings > 0 })
	if len(pinged) == 0 {
		return NoData, "the upstream sent no ping: its pings cannot have gone unanswered"
	}
	var pings int64
	var slowest, cadence []float64
	unanswered := 0
	for _, f := range pinged {
		pings += int64(f.upstreamPings)
		if f.clientPongMaxMS >= 0 {
			slowest = append(slowest, f.clientPongMaxMS)
		}
		if f.upstreamPingP50MS > 0 {
			cadence = append(cadence, f.upstreamPingP50MS)
		}
		if f.pingToEndMS >= 0 && f.upstreamDrop() {
			unanswered++
		}
	}
	pong := "no client answered a ping"
	if len(slowest) > 0 {
		q := quantilesOf(slowest)
		pong = fmt.Sprintf("%s sessions answered them, slowest pong p50 %s, max %s", groupInt(len(slowest)), durationText(q.P50), durationText(q.Max))
		if len(cadence) > 0 {
			pong += fmt.Sprintf(" (the upstream pinged every %s)", secondsText(quantilesOf(cadence).P50))
		}
	}
	return RuledOut, fmt.Sprintf("the upstream sent %s pings to %s sessions; %s; %s drops came with a ping unanswered, with no common delay after it",
		groupInt(int(pings)), groupInt(len(pinged)), pong, groupInt(unanswered))
}

func explainHandshake(in *explainInput, by map[string][]*Cause, up int) (string, string) {
	capRefused := 0
	for _, c := range by[CauseCap] {
		capRefused += c.Rejected
	}
	requests, refused := 0, map[string]int{}
	rules := map[string]int{}
	for _, f := range in.all {
		if f.upgraded || f.status > 0 {
			requests++
		}
		if f.rejected() {
			refused[fmt.Sprint(f.status)]++
		}
		for _, r := range f.handshakeRules {
			rules[r]++
		}
	}
	if requests == 0 {
		return NoData, "no upgrade request reached the upstream"
	}
	nRefused := 0
	for _, n := range refused {
		nRefused += n
	}
	if nRefused-capRefused > 0 || len(rules) > 0 {
		d := fmt.Sprintf("%s of %s upgrades refused (%s), %s of them by the concurrency cap",
			groupInt(nRefused), groupInt(requests), countsText(refused), groupInt(capRefused))
		if len(rules) > 0 {
			d += "; sessions by handshake rule: " + countsText(rules)
		}
		return Confirmed, d
	}
	d := fmt.Sprintf("%s of %s upgrades got their 101", groupInt(up), groupInt(requests))
	if capRefused > 0 {
		d += fmt.Sprintf("; the %s refused are the concurrency cap's", groupInt(capRefused))
	}
	return RuledOut, d + "; no handshake rule of severity warn or error was broken"
}

func explainTLS(in *explainInput, by map[string][]*Cause, up int) (string, string) {
	legs, renegs, own, abnormal := 0, 0, 0, 0
	for _, f := range in.all {
		legs += int(f.tlsLegs)
		renegs += int(f.tlsRenegs)
		if f.abnormal {
			abnormal++
			if f.first == labelProxy && f.how == labelTLSError {
				own++ // wstap's own TLS client: cause proxy, not the platform's TLS
			}
		}
	}
	failed := 0
	for _, n := range in.tlsFailures {
		failed += n
	}
	if legs == 0 && failed == 0 {
		return NoData, "no leg used TLS"
	}
	t := in.tls
	if t == nil {
		t = &tlsReport{}
	}
	ownText := ""
	if own > 0 {
		ownText = fmt.Sprintf("; %s ended by wstap's own TLS client, not the platform's TLS (cause proxy)", countText(own, "1006 session"))
	}
	reneg := "no renegotiation"
	switch {
	case t.RenegotiationFailed > 0:
		reneg = fmt.Sprintf("%s with a failed or refused renegotiation (%s), %s of them among the %s 1006 sessions",
			countText(t.RenegotiationFailed, "session"), countsText(t.RenegotiationFailedBy),
			groupInt(t.RenegotiationFailedAbnormal), groupInt(abnormal))
	case renegs > 0:
		reneg = fmt.Sprintf("%s in %s, none failed", countText(renegs, "renegotiation"), countText(t.RenegotiatedSessions, "session"))
	}
	if c := by[CauseTLS]; len(c) > 0 || failed > 0 || t.RenegotiationFailedAbnormal > 0 {
		d := fmt.Sprintf("%s TLS handshakes failed (%s); %s", groupInt(failed), countsText(legCounts(in.tlsFailures)), reneg)
		if len(c) > 0 {
			d += "; " + c[0].Evidence
		}
		return Confirmed, d + ownText
	}
	return RuledOut, fmt.Sprintf("%s TLS legs, no handshake failed; %s; no 1006 session ended in a TLS error of the platform's%s",
		groupInt(legs), reneg, ownText)
}

func explainCap(in *explainInput, by map[string][]*Cause, up int) (string, string) {
	if c := by[CauseCap]; len(c) > 0 {
		parts := make([]string, len(c))
		for i, x := range c {
			parts[i] = x.Evidence
		}
		return Confirmed, strings.Join(parts, "; ")
	}
	if up < minCapBelow+minCapHits {
		return NoData, fmt.Sprintf("%s upgraded sessions: too few to judge a level", groupInt(up))
	}
	peak := 0
	for _, f := range in.all {
		if f.upgraded {
			peak = max(peak, int(f.concOpen))
		}
	}
	left := countIf(in.all, func(f *facts) bool { return f.upstreamDrop() || f.rejected() }) - timerDrops(by)
	if left == 0 {
		return RuledOut, fmt.Sprintf("up to %s sessions were open at once; no refusal, and every upstream drop is a timer's", groupInt(peak))
	}
	return RuledOut, fmt.Sprintf("up to %s sessions were open at once; the %s drops and refusals no timer explains do not gather above any level of sessions open at open, in all, per credential or per target",
		groupInt(peak), groupInt(left))
}

func explainLoadClient(in *explainInput, by map[string][]*Cause, up int) (string, string) {
	drops := 0
	for _, c := range by[CauseClientDrop] {
		drops += c.Sessions
	}
	if drops > 0 || in.acceptErrors > 0 {
		d := fmt.Sprintf("%s sessions ended by the client's TCP without a close frame", groupInt(drops))
		if in.acceptErrors > 0 {
			d += fmt.Sprintf("; %s accept errors (wstap's open-file limit)", groupInt(in.acceptErrors))
		}
		return Confirmed, d
	}
	if len(in.all) == 0 {
		return NoData, "no session"
	}
	return RuledOut, fmt.Sprintf("no session ended by the client's TCP without a close frame, no accept error, over %s sessions", groupInt(len(in.all)))
}

func explainREST(in *explainInput, by map[string][]*Cause, up int) (string, string) {
	total := 0
	for _, n := range in.httpStatus {
		total += n
	}
	if total == 0 {
		return NoData, "no REST request went through the proxy"
	}
	throttled := in.httpStatus[429] + in.httpStatus[503]
	if throttled > 0 {
		return Confirmed, fmt.Sprintf("%s of %s REST requests answered 429 (%s) or 503 (%s)",
			groupInt(throttled), groupInt(total), groupInt(in.httpStatus[429]), groupInt(in.httpStatus[503]))
	}
	return RuledOut, fmt.Sprintf("%s REST requests, none answered 429 or 503", groupInt(total))
}

func timerDrops(by map[string][]*Cause) int {
	n := 0
	for _, k := range []string{CauseIdle, CausePing, CauseLifetime} {
		for _, c := range by[k] {
			n += c.Sessions
		}
	}
	return n
}

func legCounts(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k+" leg"] = v
	}
	return out
}

func filter(all []*facts, keep func(*facts) bool) []*facts {
	var out []*facts
	for _, f := range all {
		if keep(f) {
			out = append(out, f)
		}
	}
	return out
}

func countIf(all []*facts, keep func(*facts) bool) int {
	n := 0
	for _, f := range all {
		if keep(f) {
			n++
		}
	}
	return n
}
