package platform

import "sync/atomic"

// Stats is a snapshot of the platform's counters.
type Stats struct {
	Upgraded    int64 // sessions that got a 101, over-cap ones included
	Rejected    int64 // connections that never got a 101 (TLS or handshake failure)
	IdleDrops   int64 // sessions dropped with a FIN and no close frame after IdleTimeout of client silence
	CapDrops    int64 // sessions dropped with an RST because Cap sessions were already open
	CleanCloses int64 // sessions whose client sent a close frame and got one back
	ClientGone  int64 // sessions whose TCP connection ended without a close frame from the client
	PingsSent   int64 // pings the platform sent
	Faults      int64 // faults clients asked for and got (Config.Faults)
	Current     int64 // sessions open now, over-cap ones not included
	MaxCurrent  int64 // the highest Current seen
}

// counters are the live counters behind Stats.
type counters struct {
	upgraded, rejected, idleDrops, capDrops, cleanCloses, clientGone, pingsSent, faults atomic.Int64
	current, maxCurrent                                                                 atomic.Int64
}

// admit counts a session about to be upgraded against limit (0 = no limit)
// and reports whether it may stay; one that may not is not counted.
func (c *counters) admit(limit int) bool {
	n := c.current.Add(1)
	if limit > 0 && n > int64(limit) {
		c.current.Add(-1)
		return false
	}
	for {
		m := c.maxCurrent.Load()
		if n <= m || c.maxCurrent.CompareAndSwap(m, n) {
			return true
		}
	}
}

func (c *counters) snapshot() Stats {
	return Stats{
		Upgraded:    c.upgraded.Load(),
		Rejected:    c.rejected.Load(),
		IdleDrops:   c.idleDrops.Load(),
		CapDrops:    c.capDrops.Load(),
		CleanCloses: c.cleanCloses.Load(),
		ClientGone:  c.clientGone.Load(),
		PingsSent:   c.pingsSent.Load(),
		Faults:      c.faults.Load(),
		Current:     c.current.Load(),
		MaxCurrent:  c.maxCurrent.Load(),
	}
}
