package jmeter

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// LatePong is the gap between reads from which answering pings counts as
// late: wstap report's --late-pong default (docs/records.md).
const LatePong = 5 * time.Second

// The rules, ids exact (issue 14).
const (
	RulePingsUnanswered   = "plan-pings-unanswered"
	RulePingsDiscarded    = "plan-pings-discarded"
	RulePongsLate         = "plan-pongs-late"
	RuleNoKeepalive       = "plan-no-keepalive"
	RuleSubprotocol       = "plan-subprotocol-missing"
	RuleTokenShared       = "plan-token-shared"
	RuleNewConnectionLoop = "plan-new-connection-each-iteration"
)

// Finding is one rule a thread group breaks.
type Finding struct {
	ThreadGroup string `json:"-"`
	Rule        string `json:"rule"`
	Detail      string `json:"detail"`
}

// Timing is how a thread group's threads use a connection, in seconds,
// counting timers at their longest and a single read at its read timeout.
// A gap is +Inf when what it waits for never happens.
type Timing struct {
	// SendGap is the longest time nothing is sent on an open connection.
	SendGap float64
	// PingGap is the longest time between two pings sent (ping-pong sampler).
	PingGap float64
	// AnswerGap is the longest time between two reads whose filters answer
	// pings: how late a pong can be.
	AnswerGap float64
}

// Repeats reports whether a thread runs its steps more than once.
func (tg *ThreadGroup) Repeats() bool {
	n, _, ok := tg.Loops.Int()
	return !ok || n < 0 || n > 1
}

// Timing works out the thread group's gaps.
func (tg *ThreadGroup) Timing() Timing {
	rep := tg.Repeats()
	gap := func(event func(*Sampler) bool) float64 {
		return spanOf(tg.Steps, rep, event).longest(rep)
	}
	return Timing{
		SendGap:   gap((*Sampler).Sends),
		PingGap:   gap(func(s *Sampler) bool { return s.Kind == KindPingPong }),
		AnswerGap: gap(func(s *Sampler) bool { return s.Reads() && s.Pings() == "reply" }),
	}
}

// Samplers lists the thread group's samplers and unknown elements in the
// order they run, controllers flattened (Sampler.In names them).
func (tg *ThreadGroup) Samplers() []*Sampler {
	var out []*Sampler
	var walk func([]Step)
	walk = func(steps []Step) {
		for _, st := range steps {
			if st.Sampler != nil {
				out = append(out, st.Sampler)
				continue
			}
			walk(st.Block.Steps)
		}
	}
	walk(tg.Steps)
	return out
}

// Check returns the findings of every thread group of the plan, in plan
// order. idle is the idle timeout a connection must not stay silent for
// (wstap plan --idle, or one a run inferred).
func Check(p *Plan, idle time.Duration) []Finding {
	var out []Finding
	for _, tg := range p.ThreadGroups {
		out = append(out, CheckGroup(tg, idle)...)
	}
	return out
}

// CheckGroup returns the findings of one thread group.
func CheckGroup(tg *ThreadGroup, idle time.Duration) []Finding {
	var fs []Finding
	add := func(rule, format string, a ...any) {
		fs = append(fs, Finding{ThreadGroup: tg.Name, Rule: rule, Detail: fmt.Sprintf(format, a...)})
	}
	t := tg.Timing()
	checkPings(tg, t, add)
	if t.SendGap > idle.Seconds() {
		add(RuleNoKeepalive, "nothing is sent on the connection for %s, longer than the idle timeout of %s: "+
			"add a ping-pong sampler or a write within the loop", seconds(t.SendGap), seconds(idle.Seconds()))
	}
	checkUpgrades(tg, add)
	return fs
}

// seconds prints a gap: "30 s", "2.5 s", or "ever" for +Inf.
func seconds(s float64) string {
	if math.IsInf(s, 1) {
		return "as long as it stays open"
	}
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", s), "0"), ".") + " s"
}

// names quotes sampler names for a detail: 'a', 'b'.
func names(ss []*Sampler) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = "'" + s.Name + "'"
	}
	return strings.Join(q, ", ")
}
