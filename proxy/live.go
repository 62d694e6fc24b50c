package proxy

import "sync/atomic"

// Relayed is what went one way through the relay of upgraded sessions:
// frames, wire bytes (headers included, and the bytes of a direction
// relayed as a tunnel after an unparsable header), pings and pongs.
type Relayed struct {
	Frames, Bytes, Pings, Pongs int64
}

// liveDir is Relayed of one session direction as it passes: written only by
// that direction's relay goroutine, once per read (publish), and read by
// Server.Relayed from any goroutine. The padding keeps the two directions'
// counters (and the session's other fields) on cache lines of their own, so
// the two relay goroutines of a session do not bounce one line between cores.
type liveDir struct {
	_                           [64]byte
	frames, bytes, pings, pongs atomic.Int64
}

// publish makes one read of n bytes visible, with the frame counts d's
// scanner has reached. Counters that did not change are not written: a
// load is a plain move, a store a locked instruction.
func (l *liveDir) publish(d *dirObs, n int) {
	l.bytes.Add(int64(n))
	c := &d.counts
	if l.frames.Load() != c.Frames {
		l.frames.Store(c.Frames)
	}
	if l.pings.Load() != c.Ping {
		l.pings.Store(c.Ping)
	}
	if l.pongs.Load() != c.Pong {
		l.pongs.Store(c.Pong)
	}
}

func (l *liveDir) load() Relayed {
	return Relayed{Frames: l.frames.Load(), Bytes: l.bytes.Load(), Pings: l.pings.Load(), Pongs: l.pongs.Load()}
}

func (r *Relayed) add(o Relayed) {
	r.Frames += o.Frames
	r.Bytes += o.Bytes
	r.Pings += o.Pings
	r.Pongs += o.Pongs
}

// Relayed returns, by direction (client to upstream, upstream to client),
// what every upgraded session relayed so far: the ended ones' totals plus
// the open ones' counters as they stand. Each figure only grows: a session
// moves from open to ended under s.mu (untrack), so a call counts it once.
// It walks the open sessions; call it at scrape time, not per frame.
func (s *Server) Relayed() (clientToUp, upToClient Relayed) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := s.endedRelayed
	for ss := range s.sessions {
		for d := range numDirections {
			sum[d].add(ss.live[d].load())
		}
	}
	return sum[clientToUpstream], sum[upstreamToClient]
}

// foldRelayed adds the counters of a session leaving s.sessions to the
// ended totals; s.mu is held.
func (s *Server) foldRelayed(ss *wsSession) {
	for d := range numDirections {
		s.endedRelayed[d].add(ss.live[d].load())
	}
}
