package report

import "sort"

// A concurrency cap acts when a session opens: it drops (or refuses) the
// sessions that open while more than its level of sessions in its scope are
// open, and lets the others live. So it is judged on the concurrency at open,
// counted in its scope: every session (scope all), the sessions of one
// credential, or those of one target.

// Cap rules: a level needs minCapHits drops or refusals above it, at least
// minCapPurity of the sessions above it dropped or refused, at least
// minCapBelow sessions at or below it, and a drop rate below it under
// maxCapLeak of the rate above.
const (
	minCapHits   = 3
	minCapPurity = 0.7
	minCapBelow  = 3
	maxCapLeak   = 0.25
)

// capPoint is one session or refusal in a scope: its concurrency at open and
// whether the cap could have ended it (an unexplained upstream drop or a
// refusal).
type capPoint struct {
	f   *facts
	x   int
	hit bool
}

// capFit is the best level of one group of a scope.
type capFit struct {
	scope, key string
	level      int
	split      int // points at or below split are let live
	above      int
	hits       int // drops and refusals above the split
	below      int
	belowHits  int
	members    []*facts
}

// scopeFit is a scope's explanation: its capped groups and how many drops
// and refusals it leaves unexplained.
type scopeFit struct {
	scope  string
	caps   []*capFit
	misses int
}

// caps finds the scope whose levels best explain the unexplained upstream
// drops and the refusals, and attributes them. Scope all wins ties: with one
// credential and one target the three scopes are the same count.
func (a *attribution) caps() {
	hit := func(f *facts) bool { return a.owner[f] == nil && (f.upstreamDrop() || f.rejected()) }
	var best, credFit *scopeFit
	for _, sc := range []struct {
		scope string
		key   func(*facts) string
		x     func(*facts) int
	}{
		{ScopeAll, func(*facts) string { return "" }, func(f *facts) int { return int(f.concOpen) }},
		{ScopeCredential, func(f *facts) string { return f.credential }, func(f *facts) int { return int(f.credConc) }},
		{ScopeTarget, func(f *facts) string { return f.target }, func(f *facts) int { return int(f.targetConc) }},
	} {
		fit := a.fitScope(sc.scope, sc.key, sc.x, hit)
		if fit != nil && (best == nil || fit.misses < best.misses) {
			best = fit
		}
		if sc.scope == ScopeCredential {
			credFit = fit
		}
	}
	if best == nil {
		return
	}
	for _, c := range best.caps {
		cause := &Cause{Cause: CauseCap, Scope: c.scope, Level: c.level}
		switch c.scope {
		case ScopeCredential:
			cause.Credential = c.key
		case ScopeTarget:
			cause.Target = c.key
		}
		a.add(cause, c.members)
		cause.Evidence = a.capEvidence(c, cause)
		if best.scope == ScopeAll && (credFit == nil || credFit.misses == best.misses) {
			if cred := sharedCredential(c.members); cred != "" {
				cause.Evidence += "; every session above it carried credential " + cred +
					", and a cap on that credential alone explains the drops as well: the run cannot tell the two apart"
			}
		}
		cause.figure = capFigure(c, a.all)
	}
}

// fitScope splits the sessions of a scope into its groups and fits a level in
// each; it returns nil when no group has a cap, or when the scope has a single
// group and is not scope all (then it is scope all counted again).
func (a *attribution) fitScope(scope string, key func(*facts) string, x func(*facts) int, hit func(*facts) bool) *scopeFit {
	groups := map[string][]capPoint{}
	for _, f := range a.all {
		if !f.upgraded && !f.rejected() {
			continue
		}
		k := key(f)
		if k == "" && scope != ScopeAll {
			continue
		}
		groups[k] = append(groups[k], capPoint{f: f, x: x(f), hit: hit(f)})
	}
	if scope != ScopeAll && len(groups) < 2 {
		return nil
	}
	fit := &scopeFit{scope: scope}
	for _, f := range a.all {
		if hit(f) {
			fit.misses++
		}
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if c := fitLevel(groups[k]); c != nil {
			c.scope, c.key = scope, k
			fit.caps = append(fit.caps, c)
			// The cap explains its hits and wrongly predicts the
			// survivors above it and the hits below it.
			fit.misses += (c.above - c.hits) - c.hits
			if len(fit.caps) > 1 {
				fit.misses++ // each further level is one more parameter
			}
		}
	}
	if len(fit.caps) == 0 {
		return nil
	}
	return fit
}

// fitLevel finds the split of a group's concurrency at open with the fewest
// errors (survivors above it, hits at or below it) and keeps it when the hits
// concentrate above it.
func fitLevel(pts []capPoint) *capFit {
	sort.Slice(pts, func(i, j int) bool { return pts[i].x < pts[j].x })
	hits := 0
	for _, p := range pts {
		if p.hit {
			hits++
		}
	}
	if hits < minCapHits {
		return nil
	}
	bestErr, bestI := -1, -1
	belowHits, below := 0, 0
	for i := 0; i < len(pts)-1; i++ {
		below++
		if pts[i].hit {
			belowHits++
		}
		if pts[i].x == pts[i+1].x {
			continue
		}
		aboveLive := (len(pts) - below) - (hits - belowHits)
		if e := aboveLive + belowHits; bestErr < 0 || e < bestErr {
			bestErr, bestI = e, i
		}
	}
	if bestI < 0 {
		return nil
	}
	return levelAt(pts, bestI, hits)
}

// levelAt builds the fit of the split after pts[i] and checks the cap rules.
func levelAt(pts []capPoint, i, hits int) *capFit {
	c := &capFit{split: pts[i].x, below: i + 1, above: len(pts) - i - 1}
	for k, p := range pts {
		switch {
		case k <= i && p.hit:
			c.belowHits++
		case k <= i:
			c.level = max(c.level, p.x)
		case p.hit:
			c.members = append(c.members, p.f)
		}
	}
	c.hits = len(c.members)
	if c.hits < minCapHits || c.below < minCapBelow || c.level == 0 {
		return nil
	}
	above := float64(c.hits) / float64(c.above)
	belowRate := float64(c.belowHits) / float64(c.below)
	if above < minCapPurity || belowRate > maxCapLeak*above {
		return nil
	}
	return c
}

// sharedCredential is the credential all members carried, or "".
func sharedCredential(m []*facts) string {
	if len(m) == 0 || m[0].credential == "" {
		return ""
	}
	for _, f := range m[1:] {
		if f.credential != m[0].credential {
			return ""
		}
	}
	return m[0].credential
}
