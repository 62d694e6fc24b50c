package report

import (
	"math"
	"sort"
)

// A platform timer (an idle timeout, a ping timeout, a session lifetime)
// drops a session when one variable reaches a value: the client's silence,
// the age of an unanswered ping, the session's age. Its drops cluster at that
// value, and no session that it spared went past it.
type timerKind struct {
	cause string
	// at is the variable at a session's end, in ms; negative when it does
	// not apply (no unanswered ping, say).
	at func(*facts) float64
	// outlived is the largest value the variable reached in a session this
	// timer did not end: one above the timer contradicts it.
	outlived func(*facts) float64
}

var timerKinds = []timerKind{
	{CauseIdle,
		func(f *facts) float64 { return f.clientSilenceMS },
		func(f *facts) float64 { return f.clientMaxSilenceMS }},
	{CausePing,
		func(f *facts) float64 { return f.pingToEndMS },
		func(f *facts) float64 { return max(f.clientPongMaxMS, f.pingToEndMS) }},
	{CauseLifetime,
		func(f *facts) float64 { return f.lifeMS },
		func(f *facts) float64 { return f.lifeMS }},
}

// Timer rules: a cluster holds the values within ±clusterSpread of its
// median, at least minTimerCount of them and minTimerShare of the drops left;
// values under minTimerMS (a drop right after the upgrade or right after
// traffic) tell nothing of a timer. A timer is contradicted by a session it
// spared whose variable went past the cluster by contradictSlack, and is
// rejected when such sessions number more than maxContradict of its drops.
const (
	clusterSpread   = 0.10
	minTimerCount   = 3
	minTimerShare   = 0.02
	minTimerMS      = 1000
	contradictSlack = 1.10
	maxContradict   = 0.10
	// A lifetime whose sessions were silent for more than silentLifeShare of
	// their life is an idle timeout seen again.
	silentLifeShare = 0.9
	maxTimerTries   = 5
	// estimateRank is the rank of a timer's drops taken as its value.
	estimateRank = 0.05
)

// timerFit is a timer found in the drops: its window and its contradictions.
type timerFit struct {
	kind              timerKind
	low, high, median float64
	// estimate is the timer's value: a timer fires at it or a little later
	// (its check period), so the low end of its drops, not their median.
	estimate  float64
	count     int
	spared    int     // sessions it spared that went past it
	sparedMax float64 // the longest of those, or of all sessions it spared
}

func (t *timerFit) holds(f *facts) bool {
	v := t.kind.at(f)
	return v >= t.low && v <= t.high
}

// timers finds each kind of timer in the unattributed upstream drops, then
// gives every drop to the timer whose window holds it (the nearest one,
// relative to its value, when several do).
func (a *attribution) timers() {
	pool := a.unattributed((*facts).upstreamDrop)
	var fits []*timerFit
	for _, k := range timerKinds {
		if t := a.fitTimer(k, pool); t != nil {
			fits = append(fits, t)
		}
	}
	fits = withoutRedundant(fits, pool)
	members := map[*timerFit][]*facts{}
	for _, f := range pool {
		if t := nearestTimer(fits, f); t != nil {
			members[t] = append(members[t], f)
		}
	}
	for _, t := range fits {
		m := members[t]
		if len(m) < minTimerCount || (t.kind.cause == CauseLifetime && mostlySilent(m)) {
			continue
		}
		c := &Cause{Cause: t.kind.cause, Seconds: math.Round(t.estimate/100) / 10, lowMS: t.low}
		a.add(c, m)
		c.Evidence = a.timerEvidence(t, c)
		c.figure = timerFigure(t, c, a.all)
	}
}

// withoutRedundant drops, fewest first, the timers that explain fewer than
// minTimerCount drops no other timer explains: their drops are another
// timer's seen again (sessions silent from their start are both idle and of
// one age).
func withoutRedundant(fits []*timerFit, pool []*facts) []*timerFit {
	for len(fits) > 1 {
		own := make([]int, len(fits))
		for _, f := range pool {
			holder := -1
			for i, t := range fits {
				if t.holds(f) {
					if holder >= 0 {
						holder = -2
						break
					}
					holder = i
				}
			}
			if holder >= 0 {
				own[holder]++
			}
		}
		weakest := 0
		for i := range fits {
			if own[i] < own[weakest] {
				weakest = i
			}
		}
		if own[weakest] >= minTimerCount {
			break
		}
		fits = append(fits[:weakest:weakest], fits[weakest+1:]...)
	}
	return fits
}

// fitTimer tries the densest windows of the kind's variable over the drops,
// densest first, and keeps the first that the spared sessions do not
// contradict.
func (a *attribution) fitTimer(k timerKind, pool []*facts) *timerFit {
	var v []float64
	for _, f := range pool {
		if x := k.at(f); x >= minTimerMS {
			v = append(v, x)
		}
	}
	sort.Float64s(v)
	need := max(minTimerCount, int(math.Ceil(minTimerShare*float64(len(pool)))))
	for try := 0; try < maxTimerTries; try++ {
		w, ok := densestWindow(v)
		if !ok || w.count < need {
			return nil
		}
		t := &timerFit{kind: k, low: w.low, high: w.high, median: w.median, count: w.count,
			estimate: rankValue(v[sort.SearchFloat64s(v, w.low):sort.Search(len(v), func(i int) bool { return v[i] > w.high })], estimateRank)}
		if a.contradictions(t) <= int(maxContradict*float64(t.count)) {
			return t
		}
		v = without(v, w.low, w.high)
	}
	return nil
}

// contradictions counts the sessions the timer spared whose variable went
// past its window, and notes the longest value any spared session reached.
func (a *attribution) contradictions(t *timerFit) int {
	n := 0
	for _, f := range a.all {
		if !f.upgraded || (f.upstreamDrop() && t.holds(f)) {
			continue
		}
		o := t.kind.outlived(f)
		t.sparedMax = max(t.sparedMax, o)
		if o > t.high*contradictSlack {
			n++
		}
	}
	t.spared = n
	return n
}

// nearestTimer is the timer whose window holds f, nearest relative to its
// median; an idle timeout wins over a lifetime for a session silent nearly
// all its life.
func nearestTimer(fits []*timerFit, f *facts) *timerFit {
	var best *timerFit
	bestD := math.Inf(1)
	for _, t := range fits {
		if !t.holds(f) {
			continue
		}
		d := math.Abs(t.kind.at(f)-t.median) / t.median
		if t.kind.cause == CauseIdle && f.lifeMS > 0 && f.clientSilenceMS/f.lifeMS > silentLifeShare {
			d = -1
		}
		if d < bestD {
			best, bestD = t, d
		}
	}
	return best
}

// mostlySilent reports whether sessions were silent for most of their life:
// then their common age is the idle timeout's, not a lifetime.
func mostlySilent(m []*facts) bool {
	var share []float64
	for _, f := range m {
		if f.lifeMS > 0 {
			share = append(share, f.clientSilenceMS/f.lifeMS)
		}
	}
	return len(share) > 0 && quantilesOf(share).P50 > silentLifeShare
}

// window is a run of sorted values within ±clusterSpread of their median.
type window struct {
	count             int
	low, high, median float64
}

// densestWindow finds the densest window [m·(1−spread), m·(1+spread)] over
// sorted v (m taken at each value, then recentred on the members' median).
func densestWindow(v []float64) (window, bool) {
	best := window{}
	for _, m := range v {
		w := windowAt(v, m)
		if w.count > 0 {
			w = windowAt(v, w.median)
		}
		if w.count > best.count || (w.count == best.count && w.high-w.low < best.high-best.low) {
			best = w
		}
	}
	return best, best.count > 0
}

func windowAt(v []float64, m float64) window {
	lo := sort.SearchFloat64s(v, m*(1-clusterSpread))
	hi := sort.Search(len(v), func(i int) bool { return v[i] > m*(1+clusterSpread) })
	if hi <= lo {
		return window{}
	}
	in := v[lo:hi]
	return window{count: len(in), low: in[0], high: in[len(in)-1], median: rankValue(in, 0.5)}
}

// without drops the values in [lo, hi] from sorted v.
func without(v []float64, lo, hi float64) []float64 {
	out := v[:0:0]
	for _, x := range v {
		if x < lo || x > hi {
			out = append(out, x)
		}
	}
	return out
}
