package report

import (
	"container/heap"
	"time"

	"github.com/wstap/wstap/capture/record"
)

// candidates keeps the whole records of a run's first maxAbnormalRows 1006
// sessions by end, and their timelines: the HTML lists the first
// maxAbnormalRows of all runs merged, each among the first of its own run.
// Records are written as sessions end, so few offers displace another.
type candidates struct {
	h candHeap
	// timeline counts, by candidate id, the events seen (all kinds, for the
	// maxTimelineEvents cap); nil until done.
	seen map[string]int
	// recs are the kept records by session.
	recs map[*session]*record.Session
}

// candidate is one 1006 session whose record is kept.
type candidate struct {
	end int64 // Unix ns
	idx int   // in the run's file
	rec *record.Session
	s   *session
}

// before orders candidates as the report lists sessions: by end, then file order.
func (c candidate) before(o candidate) bool {
	if c.end != o.end {
		return c.end < o.end
	}
	return c.idx < o.idx
}

// candHeap is a max-heap: its root is the last of the kept candidates.
type candHeap []candidate

func (h candHeap) Len() int           { return len(h) }
func (h candHeap) Less(i, j int) bool { return h[j].before(h[i]) }
func (h candHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *candHeap) Push(x any)        { *h = append(*h, x.(candidate)) }
func (h *candHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// wants reports whether a session that ended at end, number idx in the
// file, is among the first maxAbnormalRows seen so far.
func (c *candidates) wants(end int64, idx int) bool {
	return len(c.h) < maxAbnormalRows || (candidate{end: end, idx: idx}).before(c.h[0])
}

// offer keeps rec if it is among the first maxAbnormalRows seen so far.
func (c *candidates) offer(rec *record.Session, s *session, idx int) {
	n := candidate{s.end, idx, rec, s}
	switch {
	case len(c.h) < maxAbnormalRows:
		heap.Push(&c.h, n)
	case n.before(c.h[0]):
		c.h[0] = n
		heap.Fix(&c.h, 0)
	}
}

// done ends the offers: the events that follow are kept for these sessions.
func (c *candidates) done() {
	c.seen = make(map[string]int, len(c.h))
	c.recs = make(map[*session]*record.Session, len(c.h))
	for _, k := range c.h {
		c.seen[k.rec.ID] = 0
		c.recs[k.s] = k.rec
	}
	c.h = nil
}

// timelineEvent is one ping or pong of a session's timeline.
type timelineEvent struct {
	at         time.Time
	rttMS      float64
	pong       bool
	clientSent bool
}

// addEvent adds e to its session's timeline when the session is a
// candidate: pings and pongs among its first maxTimelineEvents events.
func (c *candidates) addEvent(e *loggedEvent, timelines map[string][]timelineEvent) {
	n, ok := c.seen[e.Session]
	if !ok || n >= maxTimelineEvents {
		return
	}
	c.seen[e.Session] = n + 1
	if e.Event == "ping" || e.Event == "pong" {
		timelines[e.Session] = append(timelines[e.Session], timelineEvent{at: e.Time, rttMS: e.RTTMS,
			pong: e.Event == "pong", clientSent: e.Dir == "client_to_upstream"})
	}
}
