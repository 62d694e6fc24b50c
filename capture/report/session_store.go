package report

import "time"

// session is what the report keeps of one session record once it is read:
// the facts the causes need and the two figures of the concurrency replay.
type session struct {
	facts
	// concAtEnd is the record's concurrent_at_end (0 when not recorded);
	// recConcOpen and recCredConc its counts at open, which the merge of the runs
	// overwrites in facts (Summarize starts again from these).
	concAtEnd, recConcOpen, recCredConc int32
	// counted: the session got a 101 or saw a close code (see upgraded);
	// only those are replayed as open sessions and can end in 1006.
	counted bool
}

// chunkLen is how many sessions a chunk of a sessionStore holds: appending
// never copies what was read (a growing slice would hold two copies).
const chunkLen = 4096

// sessionStore holds the sessions of a run in file order, in chunks.
type sessionStore struct {
	chunks [][]session
	n      int
}

// add appends a zero session and returns it to be filled.
func (st *sessionStore) add() *session {
	if st.n%chunkLen == 0 {
		st.chunks = append(st.chunks, make([]session, 0, chunkLen))
	}
	c := &st.chunks[len(st.chunks)-1]
	*c = append(*c, session{})
	st.n++
	return &(*c)[len(*c)-1]
}

// each calls fn with every session in file order.
func (st *sessionStore) each(fn func(i int, s *session)) {
	i := 0
	for _, c := range st.chunks {
		for k := range c {
			fn(i, &c[k])
			i++
		}
	}
}

// SessionKey names one session of a run.
type SessionKey struct {
	ID     string
	Target string
}

// Sessions yields the id and target of every session of the run, in file
// order (the records themselves are not kept).
func (r *Run) Sessions(yield func(int, SessionKey) bool) {
	i := 0
	for _, c := range r.store.chunks {
		for k := range c {
			if !yield(i, SessionKey{c[k].id, c[k].target}) {
				return
			}
			i++
		}
	}
}

// maxInterned bounds an interner: past it, strings are kept as they come
// (targets that carry a token per session would otherwise fill the map).
const maxInterned = 1 << 16

// interner keeps one copy of each repeated string of a run (targets,
// credentials, verdicts): a million records name a few hundred.
type interner map[string]string

func (in interner) of(s string) string {
	if v, ok := in[s]; ok {
		return v
	}
	if len(in) < maxInterned {
		in[s] = s
	}
	return s
}

// nanos is t in Unix nanoseconds, clamped to the int64 range (years
// 1678–2262), for the compact time lists of the concurrency replay.
func nanos(t time.Time) int64 {
	switch {
	case t.Before(minNanos):
		return minNanos.UnixNano()
	case t.After(maxNanos):
		return maxNanos.UnixNano()
	}
	return t.UnixNano()
}

var (
	minNanos = time.Unix(0, -1<<63).UTC()
	maxNanos = time.Unix(0, 1<<63-1).UTC()
)

// trim gives *v a backing array of its length when appending left more
// than an eighth of it unused: a run's lists live as long as the run.
func trim[T any](v *[]T) {
	if cap(*v)-len(*v) > len(*v)/8 {
		*v = append(make([]T, 0, len(*v)), *v...)
	}
}

// trimLists trims the run's per-session lists once it is read.
func (r *Run) trimLists() {
	ka := &r.tally.ka
	for _, v := range []*[]float64{&ka.c2uInt, &ka.u2cInt, &ka.c2uRTT, &ka.u2cRTT, &ka.chartCl, &ka.chartUp} {
		trim(v)
	}
	for leg := range r.tls.hsMS {
		v := r.tls.hsMS[leg]
		trim(&v)
		r.tls.hsMS[leg] = v
	}
	for _, pts := range r.tls.points {
		trim(&pts.okAt[0])
		trim(&pts.okAt[1])
	}
	trim(&r.open.starts)
	trim(&r.open.ends)
}
