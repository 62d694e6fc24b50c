package report

import (
	"fmt"
	"strings"
)

// Each cause states its evidence in one sentence with its numbers.

func (a *attribution) capEvidence(c *capFit, cause *Cause) string {
	var drops, refused []*facts
	lo, hi := 0, 0
	for _, f := range c.members {
		x := capX(c.scope, f)
		if lo == 0 || x < lo {
			lo = x
		}
		hi = max(hi, x)
		if f.abnormal {
			drops = append(drops, f)
		} else {
			refused = append(refused, f)
		}
	}
	what := "sessions"
	switch c.scope {
	case ScopeCredential:
		what = "sessions of credential " + c.key
	case ScopeTarget:
		what = "sessions to " + c.key
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s opened while %s %s were open", countText(len(c.members), "session"), rangeText(lo, hi), what)
	if len(drops) > 0 {
		life := lifeValues(drops)
		fmt.Fprintf(&b, "; %s dropped by the upstream %s after the 101 (p50; %s)",
			groupInt(len(drops)), secondsText(quantilesOf(life).P50), howText(drops))
	}
	if len(refused) > 0 {
		fmt.Fprintf(&b, "; %s refused (%s)", groupInt(len(refused)), statusText(refused))
	}
	fmt.Fprintf(&b, "; of the %s opened at or below %s, %s ended so", groupInt(c.below), groupInt(c.level), groupInt(c.belowHits))
	if c.above > c.hits {
		fmt.Fprintf(&b, ", and %s above it lived", groupInt(c.above-c.hits))
	}
	if c.scope == ScopeCredential || c.scope == ScopeTarget {
		if n, peak := a.otherGroupsPeak(c); n > 0 {
			fmt.Fprintf(&b, "; %s other %ss reached up to %s open at once without such drops", groupInt(n), c.scope, groupInt(peak))
		}
	}
	fmt.Fprintf(&b, ": a cap of %s concurrent %s", groupInt(c.level), what)
	return b.String()
}

// otherGroupsPeak counts the other groups of a scope and the most sessions
// any of them had open at once.
func (a *attribution) otherGroupsPeak(c *capFit) (int, int) {
	peak := map[string]int{}
	for _, f := range a.all {
		k := f.credential
		if c.scope == ScopeTarget {
			k = f.target
		}
		if k == "" || k == c.key || !f.upgraded {
			continue
		}
		peak[k] = max(peak[k], capX(c.scope, f))
	}
	m := 0
	for _, p := range peak {
		m = max(m, p)
	}
	return len(peak), m
}

func capX(scope string, f *facts) int {
	switch scope {
	case ScopeCredential:
		return int(f.credConc)
	case ScopeTarget:
		return int(f.targetConc)
	}
	return int(f.concOpen)
}

func (a *attribution) timerEvidence(t *timerFit, c *Cause) string {
	m := c.members
	span := fmt.Sprintf("%s (p50 %s)", spanText(t.low, t.high), secondsText(t.median))
	switch t.kind.cause {
	case CauseIdle:
		return a.idleEvidence(t, m, span)
	case CausePing:
		return a.pingEvidence(t, m, span)
	}
	silence := quantilesOf(valuesOf(m, func(f *facts) float64 { return f.clientSilenceMS }))
	return fmt.Sprintf("%s dropped by the upstream at an age of %s while their clients were still sending (client silence p50 %s); no session it spared lived longer than %s: a session lifetime of %s",
		countText(len(m), "session"), span, secondsText(silence.P50), secondsText(t.sparedMax), secondsText(t.estimate))
}

func (a *attribution) idleEvidence(t *timerFit, m []*facts, span string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s dropped by the upstream after their client had sent nothing (its pongs not counted) for %s",
		countText(len(m), "session"), span)
	var ponged []float64
	for _, f := range m {
		if f.upstreamPings > 0 && f.clientPongP50MS >= 0 {
			ponged = append(ponged, f.clientPongMaxMS)
		}
	}
	if len(ponged) > 0 {
		fmt.Fprintf(&b, "; %s of them had answered the platform's pings (slowest pong %s): pongs did not keep them alive",
			groupInt(len(ponged)), durationText(quantilesOf(ponged).Max))
	} else {
		b.WriteString("; none of them answered a platform ping")
	}
	var spared []float64
	for _, f := range a.all {
		if f.upgraded && a.owner[f] == nil && !f.abnormal && f.lifeMS > t.high {
			spared = append(spared, f.clientMaxSilenceMS)
		}
	}
	if len(spared) > 0 {
		q := quantilesOf(spared)
		fmt.Fprintf(&b, "; the %s sessions that outlived %s were never silent longer than %s (p50 of their longest client silence %s)",
			groupInt(len(spared)), secondsText(t.high), secondsText(q.Max), secondsText(q.P50))
	}
	fmt.Fprintf(&b, ": an idle timeout of %s", secondsText(t.estimate))
	return b.String()
}

func (a *attribution) pingEvidence(t *timerFit, m []*facts, span string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s dropped by the upstream %s after a platform ping they had not answered",
		countText(len(m), "session"), span)
	var late []float64
	for _, f := range m {
		if f.clientPongMaxMS >= 0 {
			late = append(late, f.clientPongMaxMS)
		}
	}
	if len(late) > 0 {
		fmt.Fprintf(&b, "; %s of them had answered earlier pings late (slowest p50 %s)", groupInt(len(late)), durationText(quantilesOf(late).P50))
	}
	var spared []float64
	for _, f := range a.all {
		if f.upgraded && a.owner[f] == nil && f.upstreamPings > 0 && f.clientPongMaxMS >= 0 {
			spared = append(spared, f.clientPongMaxMS)
		}
	}
	if len(spared) > 0 {
		fmt.Fprintf(&b, "; the %s other sessions that answered pings did so within %s", groupInt(len(spared)), durationText(quantilesOf(spared).Max))
	}
	fmt.Fprintf(&b, ": a ping timeout of %s", secondsText(t.estimate))
	return b.String()
}

func proxyEvidence(m []*facts) string {
	shutdown := 0
	for _, f := range m {
		if f.how == labelShutdown {
			shutdown++
		}
	}
	if own := len(m) - shutdown; own > 0 {
		return fmt.Sprintf("%s ended by wstap itself (its own TLS stack or an internal error: verdict proxy-error), not by the platform or the client; %s more were open when wstap stopped",
			countText(own, "session"), groupInt(shutdown))
	}
	return fmt.Sprintf("%s still open when wstap stopped (proxy-shutdown): wstap ended them, not the platform", countText(shutdown, "session"))
}

func clientDropEvidence(m []*facts) string {
	return fmt.Sprintf("%s ended by the client's TCP before any close frame (%s): the load client, not the platform, dropped them",
		countText(len(m), "session"), howText(m))
}

func tlsEvidence(m []*facts) string {
	return fmt.Sprintf("%s ended by a TLS failure after the upgrade (%s)", countText(len(m), "session"), howText(m))
}

func unexplainedEvidence(m []*facts) string {
	life := quantilesOf(lifeValues(m))
	return fmt.Sprintf("%s dropped without a pattern of timer or concurrency (%s; age p50 %s, max %s)",
		countText(len(m), "session"), howText(m), secondsText(life.P50), secondsText(life.Max))
}

// howText counts sessions by "first how": "upstream reset 68, upstream eof 3".
func howText(m []*facts) string {
	n := map[string]int{}
	for _, f := range m {
		n[strings.TrimSpace(f.first.String()+" "+f.how.String())]++
	}
	return countsText(n)
}

// statusText counts refusals by status: "503 40".
func statusText(m []*facts) string {
	n := map[string]int{}
	for _, f := range m {
		n[fmt.Sprint(f.status)]++
	}
	return countsText(n)
}

// countText writes "1 session" or "68 sessions".
func countText(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return groupInt(n) + " " + noun + "s"
}

// rangeText writes "233–300" or "233".
func rangeText(lo, hi int) string {
	if lo == hi {
		return groupInt(lo)
	}
	return groupInt(lo) + "–" + groupInt(hi)
}

// durationText writes milliseconds as ms below a second, else seconds.
func durationText(ms float64) string {
	if ms < 1000 {
		return fmt.Sprintf("%.1f ms", ms)
	}
	return secondsText(ms)
}

func lifeValues(m []*facts) []float64 {
	return valuesOf(m, func(f *facts) float64 { return f.lifeMS })
}

func valuesOf(m []*facts, v func(*facts) float64) []float64 {
	out := make([]float64, len(m))
	for i, f := range m {
		out[i] = v(f)
	}
	return out
}
