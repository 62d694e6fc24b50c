package jmeter

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Result is what wstap plan --json prints.
type Result struct {
	ThreadGroups []GroupResult `json:"thread_groups"`
}

// GroupResult is one thread group in Result.
type GroupResult struct {
	Name     string     `json:"name"`
	Threads  Value      `json:"threads"`
	RampUp   Value      `json:"ramp_up_s"`
	Samplers []*Sampler `json:"samplers"`
	Findings []Finding  `json:"findings"`
}

// Judge returns the plan's thread groups with their samplers and findings.
func Judge(p *Plan, idle time.Duration) Result {
	r := Result{ThreadGroups: []GroupResult{}}
	for _, tg := range p.ThreadGroups {
		g := GroupResult{Name: tg.Name, Threads: tg.Threads, RampUp: tg.RampUp,
			Samplers: tg.Samplers(), Findings: CheckGroup(tg, idle)}
		if g.Samplers == nil {
			g.Samplers = []*Sampler{}
		}
		if g.Findings == nil {
			g.Findings = []Finding{}
		}
		r.ThreadGroups = append(r.ThreadGroups, g)
	}
	return r
}

// Runs says how long a thread runs: "1 loop", "10 loops", "loops until
// the test ends", "for 1800 s".
func (tg *ThreadGroup) Runs() string {
	n, _, ok := tg.Loops.Int()
	switch {
	case tg.Scheduler && (!ok || n < 0):
		return "loops for " + string(tg.Duration) + " s"
	case !ok:
		return string(tg.Loops) + " loops"
	case n < 0:
		return "loops until the test ends"
	case n == 1:
		return "1 loop"
	}
	return fmt.Sprintf("%d loops", n)
}

// Summary is one line on the thread group: its size, how often it sends a
// frame and a ping, how it answers the server's pings. E.g. "'Chat
// users': 500 threads, ramp-up 60 s, loops until the test ends; silent
// for up to 30 s; never pings; answers pings only while reading, up to
// 30 s late".
func (tg *ThreadGroup) Summary() string {
	t := tg.Timing()
	var b strings.Builder
	threads := "threads"
	if tg.Threads == "1" {
		threads = "thread"
	}
	fmt.Fprintf(&b, "'%s': %s %s, ramp-up %s s, %s", tg.Name, tg.Threads, threads, tg.RampUp, tg.Runs())
	if math.IsInf(t.SendGap, 1) {
		b.WriteString("; sends nothing after the upgrade")
	} else {
		fmt.Fprintf(&b, "; silent for up to %s", seconds(t.SendGap))
	}
	if math.IsInf(t.PingGap, 1) {
		b.WriteString("; never pings")
	} else {
		fmt.Fprintf(&b, "; pings at least every %s", seconds(t.PingGap))
	}
	reply, discard, _ := tg.readers()
	switch {
	case len(discard) > 0 && len(reply) == 0:
		b.WriteString("; discards the server's pings")
	case len(reply) == 0:
		b.WriteString("; never answers the server's pings")
	default:
		fmt.Fprintf(&b, "; answers pings only while reading, up to %s late", seconds(t.AnswerGap))
	}
	unknown := 0
	for _, s := range tg.Samplers() {
		if s.Kind == KindUnknown {
			unknown++
		}
	}
	if unknown > 0 {
		fmt.Fprintf(&b, "; %d unknown element(s) not judged", unknown)
	}
	return b.String()
}
