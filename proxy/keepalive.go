package proxy

import (
	"bytes"
	"sort"
	"time"

	"github.com/gobwas/ws"

	"github.com/wstap/wstap/capture/record"
)

// pendingPing is a ping awaiting its pong.
type pendingPing struct {
	at time.Time
	n  int
	p  [ws.MaxControlFramePayloadSize]byte
}

// maxPending bounds the pings remembered per direction; an older one that
// falls out counts as unanswered.
const maxPending = 16

// ledger matches pings to pongs by payload (RFC 6455 §5.5.3: "A Pong frame
// sent in response to a Ping frame must have identical Application data").
// Guarded by the session's mutex.
type ledger struct {
	pending     [numDirections][]pendingPing // pings sent in direction d, awaiting a pong in d.reverse()
	pingTimes   [numDirections][]time.Time
	rtt         [numDirections][]float64 // ms; rtt[d]: pongs answering pings sent in direction d
	dropped     int64
	unsolicited int64
	latePongs   int64
	worstLate   time.Duration
	hbTimes     [numDirections][]time.Time
	// oldestDropped: the first ping sent in d that fell out of pending
	// unanswered; answeredUpTo: the ping time of the latest ping sent in d
	// that got its pong.
	oldestDropped [numDirections]time.Time
	answeredUpTo  [numDirections]time.Time
}

func (l *ledger) ping(dir direction, p []byte, now time.Time) {
	l.pingTimes[dir] = append(l.pingTimes[dir], now)
	if len(l.pending[dir]) == maxPending {
		if l.oldestDropped[dir].IsZero() {
			l.oldestDropped[dir] = l.pending[dir][0].at
		}
		l.pending[dir] = append(l.pending[dir][:0], l.pending[dir][1:]...)
		l.dropped++
	}
	pp := pendingPing{at: now}
	pp.n = copy(pp.p[:], p)
	l.pending[dir] = append(l.pending[dir], pp)
}

// pong records a pong travelling in dir; it answers a ping sent in the
// reverse direction. It returns the round trip, or -1 for an unsolicited pong.
func (l *ledger) pong(dir direction, p []byte, now time.Time) time.Duration {
	pinged := dir.reverse()
	q := l.pending[pinged]
	for i := range q {
		if bytes.Equal(q[i].p[:q[i].n], p) {
			rtt := now.Sub(q[i].at)
			l.rtt[pinged] = append(l.rtt[pinged], ms(rtt))
			if q[i].at.After(l.answeredUpTo[pinged]) {
				l.answeredUpTo[pinged] = q[i].at
			}
			l.pending[pinged] = append(q[:i], q[i+1:]...)
			return rtt
		}
	}
	// §5.5.3: a pong may also be sent unsolicited, as a heartbeat.
	l.unsolicited++
	return -1
}

func (l *ledger) unanswered() int64 {
	return int64(len(l.pending[clientToUpstream])+len(l.pending[upstreamToClient])) + l.dropped
}

// oldestUnanswered is the time of the oldest ping sent in dir still
// unanswered: one that got no pong and is newer than every ping that did
// (RFC 6455 §5.5.3: a pong may answer only the most recent of several
// pings, so older ones count as answered by it). ok is false when none.
func (l *ledger) oldestUnanswered(dir direction) (at time.Time, ok bool) {
	after := l.answeredUpTo[dir]
	if d := l.oldestDropped[dir]; !d.IsZero() && d.After(after) {
		return d, true
	}
	for _, p := range l.pending[dir] {
		if p.at.After(after) {
			return p.at, true
		}
	}
	return time.Time{}, false
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// intervals summarises the gaps between successive times.
func intervals(ts []time.Time) *record.Interval {
	if len(ts) < 2 {
		return nil
	}
	gaps := make([]float64, 0, len(ts)-1)
	for i := 1; i < len(ts); i++ {
		gaps = append(gaps, ms(ts[i].Sub(ts[i-1])))
	}
	sort.Float64s(gaps)
	return &record.Interval{Min: round3(gaps[0]), P50: round3(gaps[len(gaps)/2]), Max: round3(gaps[len(gaps)-1])}
}

func rttOf(v ...[]float64) *record.RTT {
	var all []float64
	for _, x := range v {
		all = append(all, x...)
	}
	if len(all) == 0 {
		return nil
	}
	sort.Float64s(all)
	return &record.RTT{P50: round3(all[len(all)/2]), Max: round3(all[len(all)-1])}
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }
