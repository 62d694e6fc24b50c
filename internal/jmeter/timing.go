package jmeter

import "math"

// gaussianSigmas is how many deviations a Gaussian Random Timer counts as
// at its longest: JMeter draws |N(0,1)| × deviation + offset, which stays
// under offset + 3 × deviation 99.7% of the time.
const gaussianSigmas = 3

// MaxSeconds is the longest the timer sleeps: constant delay, uniform
// delay + range, Gaussian offset + 3 deviations. A delay JMeter computes
// at run time (a variable without a default) counts as 0.
func (t Timer) MaxSeconds() float64 {
	d := msOr(t.DelayMS, 0)
	r := msOr(t.RangeMS, 0)
	switch t.Class {
	case "UniformRandomTimer":
		return d + r
	case "GaussianRandomTimer":
		return d + gaussianSigmas*r
	}
	return d
}

// thinkSeconds is the longest sleep before the sampler: JMeter runs every
// timer in scope and sleeps for the sum.
func (s *Sampler) thinkSeconds() float64 {
	var sum float64
	for _, t := range s.Timers {
		sum += t.MaxSeconds()
	}
	return sum
}

// busySeconds is how long the sampler can run without a frame going out
// or a read taking place that is not an event: a single read waits up to
// its read timeout; the others are counted as taking no time.
func (s *Sampler) busySeconds() float64 {
	if s.Kind == KindRead {
		return msOr(s.ReadTimeout, 6)
	}
	return 0
}

// span summarises a stretch of a thread's run for one kind of event (a
// frame sent, a ping sent, a read that answers pings). A connection
// opened or closed is an event of every kind: a gap does not run across
// two connections, and the time after a close is on no connection.
type span struct {
	hits   bool    // an event happens in the stretch
	own    bool    // an event of the kind asked for, not only an open or close
	lead   float64 // seconds before the first event
	trail  float64 // seconds after the last event
	inner  float64 // the longest gap between two events inside
	total  float64 // the whole stretch, when there is no event
	closed bool    // the last event closes the connection
}

// then is a followed by b.
func (a span) then(b span) span {
	switch {
	case !a.hits && !b.hits:
		return span{total: a.total + b.total}
	case !a.hits:
		b.lead += a.total
		return b
	case !b.hits:
		a.trail += b.total
		return a
	}
	gap := 0.0
	if !a.closed {
		gap = a.trail + b.lead
	}
	return span{hits: true, own: a.own || b.own, lead: a.lead, trail: b.trail,
		inner: math.Max(gap, math.Max(a.inner, b.inner)), closed: b.closed}
}

// repeat is s run n times in a row (n < 0: until the thread ends).
func (s span) repeat(n int64) span {
	if !s.hits {
		if n < 0 {
			s.total = math.Inf(1)
		} else {
			s.total *= float64(n)
		}
		return s
	}
	if !s.closed {
		s.inner = math.Max(s.inner, s.trail+s.lead)
	}
	return s
}

// longest is the longest gap of a thread whose iteration is s: across
// iterations when the thread repeats, up to the thread's end otherwise.
// It is +Inf when no event of the kind asked for happens at all.
func (s span) longest(repeats bool) float64 {
	if !s.own {
		return math.Inf(1)
	}
	if repeats {
		s = s.repeat(2)
	} else if !s.closed {
		s.inner = math.Max(s.inner, s.trail)
	}
	return s.inner
}

// spanOf is the span of steps for the events event picks out; rep says
// the steps run more than once per thread, in which case a Once Only
// Controller's body, run on the first pass only, is left out: the gaps
// are those of the passes after it.
func spanOf(steps []Step, rep bool, event func(*Sampler) bool) span {
	var out span
	for _, st := range steps {
		switch {
		case st.Sampler != nil:
			out = out.then(samplerSpan(st.Sampler, event))
		case st.Block.Class == "OnceOnlyController" && rep:
		default:
			b := st.Block
			inner := spanOf(b.Steps, rep || b.Repeats, event)
			if b.Repeats {
				n, _, ok := b.Loops.Int()
				if !ok || b.Loops == "" {
					n = -1
				}
				inner = inner.repeat(n)
			}
			out = out.then(inner)
		}
	}
	return out
}

func samplerSpan(s *Sampler, event func(*Sampler) bool) span {
	think := span{total: s.thinkSeconds()}
	own := event(s)
	if own || s.NewConnection || s.Kind == KindClose {
		return think.then(span{hits: true, own: own, closed: s.Kind == KindClose})
	}
	return think.then(span{total: s.busySeconds()})
}
