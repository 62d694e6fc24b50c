package report

import (
	"slices"
	"sort"
	"time"
)

// openTimes holds the start and end times (Unix nanoseconds) of upgraded
// sessions, each list sorted once complete: how many were open at an instant
// is then two binary searches, and the open sessions over time a merge.
type openTimes struct {
	starts, ends []int64
}

func (o *openTimes) add(start, end time.Time) {
	o.starts = append(o.starts, nanos(start))
	o.ends = append(o.ends, nanos(end))
}

func (o *openTimes) sort() {
	slices.Sort(o.starts)
	slices.Sort(o.ends)
}

// merge returns the times of all of os in one openTimes, sorted.
func mergeOpenTimes(os []*openTimes) *openTimes {
	m := &openTimes{}
	for _, o := range os {
		m.starts = append(m.starts, o.starts...)
		m.ends = append(m.ends, o.ends...)
	}
	m.sort()
	return m
}

// atEnd counts the sessions started at or before t and not ended before t:
// a session ending at t is still counted.
func (o *openTimes) atEnd(t int64) int {
	st := sort.Search(len(o.starts), func(k int) bool { return o.starts[k] > t })
	en := sort.Search(len(o.ends), func(k int) bool { return o.ends[k] >= t })
	return st - en
}

// at counts the sessions started at or before t and not ended at or before t.
func (o *openTimes) at(t int64) int {
	st := sort.Search(len(o.starts), func(k int) bool { return o.starts[k] > t })
	en := sort.Search(len(o.ends), func(k int) bool { return o.ends[k] > t })
	return st - en
}

// walk calls fn with every start and end in time order, starts before ends
// at one instant, and the number of sessions open after it.
func (o *openTimes) walk(fn func(at int64, open int)) {
	i, j, open := 0, 0, 0
	for i < len(o.starts) || j < len(o.ends) {
		if j == len(o.ends) || (i < len(o.starts) && o.starts[i] <= o.ends[j]) {
			open++
			fn(o.starts[i], open)
			i++
			continue
		}
		open--
		fn(o.ends[j], open)
		j++
	}
}

// span is the first and the last instant of walk; ok is false when empty.
func (o *openTimes) span() (from, to int64, ok bool) {
	if len(o.starts) == 0 {
		return 0, 0, false
	}
	from, to = o.starts[0], o.ends[len(o.ends)-1]
	if o.ends[0] < from {
		from = o.ends[0]
	}
	if o.starts[len(o.starts)-1] > to {
		to = o.starts[len(o.starts)-1]
	}
	return from, to, true
}

// mergeConcurrency gives every 1006 session its concurrency at its end
// across all runs: its own run's concurrent_at_end (replayed when not
// recorded) plus the sessions of the other runs open at that instant; and
// finds the peak of the open sessions over time.
func (s *Summary) mergeConcurrency() {
	per := make([]*openTimes, len(s.runs))
	for i, r := range s.runs {
		per[i] = &r.open
		r.open.sort()
	}
	s.open = mergeOpenTimes(per)
	for _, ref := range s.sess {
		if ref.abnormal {
			s.drops = append(s.drops, dropRef{ref, s.concAtEnd(per, ref)})
		}
	}
	s.open.walk(func(_ int64, open int) { s.Concurrency.Peak = max(s.Concurrency.Peak, open) })
}

// concAtEnd is the concurrency of an upgraded session at its end, all runs
// merged (0 for another).
func (s *Summary) concAtEnd(per []*openTimes, ref *session) int {
	if !ref.counted {
		return 0
	}
	end := ref.end
	conc := int(ref.concAtEnd)
	if conc <= 0 {
		conc = per[ref.run].atEnd(end)
	}
	for i, o := range per {
		if i != int(ref.run) {
			conc += o.atEnd(end)
		}
	}
	return conc
}

// dropRef is a 1006 session with its merged concurrency at its end.
type dropRef struct {
	*session
	conc int
}
