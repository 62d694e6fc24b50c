package report

import (
	"fmt"
	"sort"

	"github.com/wstap/wstap/capture"
)

// Inference kinds.
const (
	InferIdleTimeout     = "idle-timeout"
	InferSessionLifetime = "session-lifetime"
)

// Inference is a conclusion drawn from the upstream's drops of a run: most of
// them followed a similar silence (an idle timeout) or came at a similar
// session age (a token or session lifetime).
type Inference struct {
	Kind string `json:"kind"` // InferIdleTimeout or InferSessionLifetime
	// Count of the Of upstream drops fall in [LowMS, HighMS]; EstimateMS is
	// their median.
	Count      int     `json:"count"`
	Of         int     `json:"of"`
	LowMS      float64 `json:"low_ms"`
	HighMS     float64 `json:"high_ms"`
	EstimateMS float64 `json:"estimate_ms"`
	Text       string  `json:"text"`
}

// Cluster rules: a cluster holds the values within ±clusterSpread of its
// median, at least minClusterCount of them and at least minClusterShare of
// the drops; drops under minClusterMS (right after traffic, or a cap dropping
// new sessions at once) tell nothing about a timeout and are left out.
const (
	clusterSpread   = 0.10
	minClusterCount = 3
	minClusterShare = 0.5
	minClusterMS    = 1000
	// A lifetime cluster whose sessions were silent for more than this share
	// of their life is the idle timeout seen again, not a lifetime.
	silentLifeShare = 0.9
)

// InferIdleDrops looks at the sessions the upstream ended (abnormal upstream
// drops and upstream close frames) and says when they cluster at one silence
// before the end — both directions silent, or the client silent — or at one
// session age: "41 of 44 sessions dropped by the upstream had been silent
// 58–61 s: an idle timeout near 60 s".
func InferIdleDrops(recs []capture.SessionRecord) []Inference {
	var drops []*capture.SessionRecord
	for i := range recs {
		if v := recs[i].Verdict; v == capture.VerdictAbnormalUp || v == capture.VerdictClosedUpstream {
			drops = append(drops, &recs[i])
		}
	}
	if len(drops) < minClusterCount {
		return nil
	}
	var out []Inference
	silent := valuesOf(drops, func(r *capture.SessionRecord) float64 { return r.Keepalive.SilenceBeforeEnd })
	clientSilent := valuesOf(drops, func(r *capture.SessionRecord) float64 { return r.Keepalive.ClientSilenceBeforeEndMS })
	idle, okIdle := findCluster(silent)
	what := "had been silent"
	if c, ok := findCluster(clientSilent); ok && (!okIdle || c.count > idle.count) {
		idle, okIdle, what = c, true, "had received nothing from the client for"
	}
	if okIdle {
		out = append(out, Inference{Kind: InferIdleTimeout, Count: idle.count, Of: idle.of,
			LowMS: idle.low, HighMS: idle.high, EstimateMS: idle.median,
			Text: fmt.Sprintf("%s %s %s: an idle timeout near %s",
				dropsText(idle, len(drops), "after 1 s or more of silence"), what, spanText(idle.low, idle.high), secondsText(idle.median))})
	}
	ages := valuesOf(drops, func(r *capture.SessionRecord) float64 { return r.DurationMS })
	if life, ok := findCluster(ages); ok && !(okIdle && (silentLife(drops, life) || idleExplains(drops, life, idle))) {
		out = append(out, Inference{Kind: InferSessionLifetime, Count: life.count, Of: life.of,
			LowMS: life.low, HighMS: life.high, EstimateMS: life.median,
			Text: fmt.Sprintf("%s ended at an age of %s: a session (or token) lifetime near %s",
				dropsText(life, len(drops), "1 s or more into the session"), spanText(life.low, life.high), secondsText(life.median))})
	}
	return out
}

// dropsText counts a cluster among the drops: "41 of 44 sessions dropped by
// the upstream"; when drops under minClusterMS were left out (a session cap
// dropping new sessions at once), it says so.
func dropsText(c cluster, drops int, after string) string {
	if c.of == drops {
		return fmt.Sprintf("%s of %s sessions dropped by the upstream", groupInt(c.count), groupInt(c.of))
	}
	return fmt.Sprintf("%s of the %s sessions the upstream dropped %s (of %s drops)",
		groupInt(c.count), groupInt(c.of), after, groupInt(drops))
}

func valuesOf(recs []*capture.SessionRecord, f func(*capture.SessionRecord) float64) []float64 {
	v := make([]float64, len(recs))
	for i, r := range recs {
		v[i] = f(r)
	}
	return v
}

// silentLife reports whether the sessions of an age cluster were silent for
// most of their life, so that the idle timeout explains their age.
func silentLife(drops []*capture.SessionRecord, c cluster) bool {
	var share []float64
	for _, r := range drops {
		if r.DurationMS >= c.low && r.DurationMS <= c.high && r.DurationMS > 0 {
			ka := r.Keepalive
			share = append(share, max(ka.SilenceBeforeEnd, ka.ClientSilenceBeforeEndMS)/r.DurationMS)
		}
	}
	return len(share) > 0 && quantilesOf(share).P50 > silentLifeShare
}

// idleExplains reports whether most sessions of an age cluster had a silence
// in the idle cluster: each ended the idle timeout after its last frame, and
// their ages gather only because their last frames came early in their life.
func idleExplains(drops []*capture.SessionRecord, life, idle cluster) bool {
	in, n := 0, 0
	for _, r := range drops {
		if r.DurationMS < life.low || r.DurationMS > life.high {
			continue
		}
		n++
		ka := r.Keepalive
		for _, s := range []float64{ka.SilenceBeforeEnd, ka.ClientSilenceBeforeEndMS} {
			if s >= idle.low && s <= idle.high {
				in++
				break
			}
		}
	}
	return n > 0 && 2*in > n
}

// cluster is the densest group of values within ±clusterSpread of its
// median; of counts the values that could belong to a cluster (≥ minClusterMS).
type cluster struct {
	count, of         int
	low, high, median float64
}

// findCluster finds the densest window [m·(1−spread), m·(1+spread)] over the
// values (m taken at each value, then recentred on the members' median) and
// accepts it when it holds enough of the values of minClusterMS or more.
func findCluster(values []float64) (cluster, bool) {
	var v []float64
	for _, x := range values {
		if x >= minClusterMS {
			v = append(v, x)
		}
	}
	sort.Float64s(v)
	best := cluster{}
	for _, m := range v {
		c := window(v, m)
		if c.count > 0 {
			c = window(v, c.median) // recentre on the members
		}
		if c.count > best.count || (c.count == best.count && c.high-c.low < best.high-best.low) {
			best = c
		}
	}
	best.of = len(v)
	if best.count < minClusterCount || float64(best.count) < minClusterShare*float64(best.of) {
		return cluster{}, false
	}
	return best, true
}

// window is the cluster of sorted v within ±clusterSpread of m.
func window(v []float64, m float64) cluster {
	lo := sort.SearchFloat64s(v, m*(1-clusterSpread))
	hi := sort.Search(len(v), func(i int) bool { return v[i] > m*(1+clusterSpread) })
	if hi <= lo {
		return cluster{}
	}
	in := v[lo:hi]
	return cluster{count: len(in), low: in[0], high: in[len(in)-1], median: rankValue(in, 0.5)}
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
