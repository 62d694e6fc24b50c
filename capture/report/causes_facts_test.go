package report

import (
	"math/rand/v2"
	"testing"
)

// TestMergeOpenConcurrencySweep: the sweep gives every session the
// concurrency at open the definition gives, counted session by session: in
// each scope, over the runs that have an upgraded session in it, the own
// run's recorded count (when there is one) or else the run's upgraded
// sessions opened at or before the instant and not ended by it; a refused
// session counts itself. The sessions share instants, end as they open, and
// some record no count.
func TestMergeOpenConcurrencySweep(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const runs, n = 3, 600
	var all, want []*facts
	for i := range n {
		f := &facts{run: int32(rng.IntN(runs)), upgraded: rng.IntN(5) > 0,
			opened: int64(rng.IntN(50)), target: []string{"a", "b"}[rng.IntN(2)],
			credential: []string{"", "x", "y"}[rng.IntN(3)]}
		f.end = f.opened + int64(rng.IntN(20))
		if i%4 == 0 {
			f.concOpen, f.credConc = int32(1+rng.IntN(30)), int32(1+rng.IntN(9))
		}
		g := *f
		all, want = append(all, f), append(want, &g)
	}
	definition(want, runs)
	mergeOpenConcurrency(all, runs)
	for i := range all {
		a, w := all[i], want[i]
		if a.concOpen != w.concOpen || a.credConc != w.credConc || a.targetConc != w.targetConc {
			t.Fatalf("session %d (%+v): all %d, credential %d, target %d; want %d, %d, %d",
				i, *a, a.concOpen, a.credConc, a.targetConc, w.concOpen, w.credConc, w.targetConc)
		}
	}
}

// definition counts as TestMergeOpenConcurrencySweep says, for every session.
func definition(all []*facts, runs int) {
	type result struct{ all, cred, target int32 }
	res := make([]result, len(all))
	count := func(f *facts, in func(*facts) bool, own int32) int32 {
		var n int32
		for r := range int32(runs) {
			has, open := false, int32(0)
			for _, g := range all {
				if g.upgraded && g.run == r && in(g) {
					has = true
					if g.opened <= f.opened && g.end > f.opened {
						open++
					}
				}
			}
			switch {
			case !has:
			case r == f.run && own > 0:
				n += own
			default:
				n += open
			}
		}
		if !f.upgraded && own == 0 {
			n++
		}
		return n
	}
	for i, f := range all {
		ownAll, ownCred := f.concOpen, f.credConc
		if !f.upgraded && ownAll > 0 {
			ownAll++
			if f.credential != "" {
				ownCred++
			}
		}
		res[i].all = count(f, func(*facts) bool { return true }, ownAll)
		res[i].target = count(f, func(g *facts) bool { return g.target == f.target }, 0)
		res[i].cred = f.credConc
		if f.credential != "" {
			res[i].cred = count(f, func(g *facts) bool { return g.credential == f.credential }, ownCred)
		}
	}
	for i, f := range all {
		f.concOpen, f.credConc, f.targetConc = res[i].all, res[i].cred, res[i].target
	}
}
