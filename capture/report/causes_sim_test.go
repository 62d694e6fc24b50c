package report

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"
)

// simSession is one session of a simulated platform for the inference tests.
func simFacts(id string, openAt float64, lifeMS float64, drop bool) *facts {
	t0 := time.Unix(1_700_000_000, 0)
	o := t0.Add(time.Duration(openAt * float64(time.Millisecond)))
	f := &facts{id: id, upgraded: true, status: 101, opened: nanos(o), end: nanos(o.Add(time.Duration(lifeMS * float64(time.Millisecond)))),
		lifeMS: lifeMS, pingToEndMS: -1, clientPongMaxMS: -1, clientPongP50MS: -1, upstreamPingP50MS: -1, target: "wss://x/chat"}
	if drop {
		f.abnormal, f.first, f.how = true, labelOf("upstream"), labelOf("eof")
	} else {
		f.first, f.how = labelOf("client"), labelOf("close-handshake")
	}
	return f
}

func TestCausesDemoLike(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var all []*facts
	n := 0
	add := func(f *facts) { n++; f.concOpen = int32(n); all = append(all, f) }
	for i := 0; i < 99; i++ { // pingers
		f := simFacts(fmt.Sprint("p", i), float64(i), 12000, false)
		f.clientSilenceMS, f.clientMaxSilenceMS, f.upstreamPings, f.clientPongMaxMS, f.clientPongP50MS = 100, 1000+rng.Float64()*100, 5, 1, 0.5
		add(f)
	}
	for i := 0; i < 81; i++ { // silent
		s := 5000 + rng.Float64()*300
		f := simFacts(fmt.Sprint("s", i), float64(100+i), s+50, true)
		f.clientSilenceMS, f.clientMaxSilenceMS, f.upstreamPings, f.clientPongMaxMS, f.clientPongP50MS = s, s, 2, 1.3, 0.4
		add(f)
	}
	for i := 0; i < 52; i++ { // clean
		f := simFacts(fmt.Sprint("c", i), float64(200+i), 3000, false)
		f.clientSilenceMS, f.clientMaxSilenceMS = 500, 800
		add(f)
	}
	for i := 0; i < 68; i++ { // over cap
		f := simFacts(fmt.Sprint("o", i), float64(300+i*5), 200, true)
		f.how = labelOf("reset")
		f.clientSilenceMS, f.clientMaxSilenceMS = 200, 200
		n = 232 + i
		add(f)
	}
	cs := inferCauses(all)
	b, _ := json.MarshalIndent(cs, "", " ")
	t.Logf("%s", b)
	ex := explain(&explainInput{all: all, causes: cs})
	b, _ = json.MarshalIndent(ex, "", " ")
	t.Logf("%s", b)
}

// TestCausesMixedSim: a per-credential cap, an idle timeout that ignores
// pongs, a ping timeout and a lifetime at once, on facts from a small
// simulation of such a platform.
func TestCausesMixedSim(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	var all []*facts
	openA := []float64{} // end times of credential A's open sessions
	for i := 0; i < 400; i++ {
		at := float64(i) * 50 // one every 50 ms
		cred := []string{"sha256:aaaa", "sha256:bbbb", "sha256:cccc"}[i%3]
		kind := []string{"active", "silent", "late", "lateok", "short"}[rng.Intn(5)]
		var life float64
		var drop bool
		f := simFacts(fmt.Sprint(kind, i), at, 0, false)
		f.credential = cred
		f.upstreamPings = 1
		switch kind {
		case "active":
			life, drop = 10000+rng.Float64()*200, true
			f.clientSilenceMS, f.clientMaxSilenceMS, f.clientPongMaxMS = 300, 500, 2
		case "silent":
			life, drop = 4000+rng.Float64()*400, true
			f.clientSilenceMS, f.clientMaxSilenceMS, f.clientPongMaxMS = life, life, 1
		case "late":
			life, drop = 5000+rng.Float64()*300, true
			f.clientSilenceMS, f.clientMaxSilenceMS, f.pingToEndMS = 600, 1000, life-2000
		case "lateok":
			life, drop = 10000+rng.Float64()*200, true
			f.clientSilenceMS, f.clientMaxSilenceMS, f.clientPongMaxMS, f.pingToEndMS = 300, 1000, 2500, 2000
		case "short":
			life = 2000
			f.clientSilenceMS, f.clientMaxSilenceMS, f.clientPongMaxMS = 300, 500, 2
		}
		if cred == "sha256:aaaa" {
			n := 0
			for _, e := range openA {
				if e > at {
					n++
				}
			}
			if n >= 20 {
				life, drop = 100, true
				f.clientSilenceMS, f.clientMaxSilenceMS, f.pingToEndMS, f.clientPongMaxMS = 100, 100, -1, -1
				f.id = fmt.Sprint("cap", i)
			}
			openA = append(openA, at+life)
		}
		f.lifeMS = life
		f.end = f.opened + int64(time.Duration(life*float64(time.Millisecond)))
		if drop {
			f.abnormal, f.first, f.how = true, labelOf("upstream"), labelOf("eof")
		}
		all = append(all, f)
	}
	mergeOpenConcurrency(all, 1)
	cs := inferCauses(all)
	for _, c := range cs {
		t.Logf("%s %d scope=%s cred=%s level=%d s=%.1f ex=%v\n   %s", c.Cause, c.Sessions, c.Scope, c.Credential, c.Level, c.Seconds, c.Examples, c.Evidence)
	}
	for _, e := range explain(&explainInput{all: all, causes: cs}) {
		t.Logf("%d %s %s: %s", e.N, e.Name, e.Verdict, e.Detail)
	}
}

func TestCausesTextRender(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	_ = rng
	var all []*facts
	for i := 0; i < 60; i++ {
		f := simFacts(fmt.Sprint("s", i), float64(i*10), 5000+float64(i%7)*40, i%2 == 0)
		f.concOpen = int32(i + 1)
		if i%2 == 0 {
			f.clientSilenceMS, f.clientMaxSilenceMS = f.lifeMS-20, f.lifeMS-20
		} else {
			f.clientSilenceMS, f.clientMaxSilenceMS, f.lifeMS = 200, 900, 9000
		}
		all = append(all, f)
	}
	cs := inferCauses(all)
	var b strings.Builder
	writeCausesText(&b, 30, cs, explain(&explainInput{all: all, causes: cs}))
	t.Log("\n" + b.String())
}
