package report

import "github.com/wstap/wstap/capture/record"

// keepaliveTally sums the keep-alive ledger of a run's upgraded sessions and
// keeps the per-session medians its quantiles and the ping chart need.
type keepaliveTally struct {
	k                              keepalives // the sums
	c2uInt, u2cInt, c2uRTT, u2cRTT []float64
	c2uMax, u2cMax                 float64
	// chartCl and chartUp: the ping intervals of the sessions not upgraded
	// (the ping chart counts every session).
	chartCl, chartUp []float64
}

// add counts the keep-alive of one upgraded session.
func (t *keepaliveTally) add(ka *record.Keepalive) {
	k := &t.k
	k.UnansweredPings += ka.UnansweredPings
	k.ClientToUpstream.Pings += ka.ClientPings
	k.UpstreamToClient.Pings += ka.UpstreamPings
	if ka.ClientPings > 0 {
		k.ClientToUpstream.SessionsPinging++
	} else {
		k.ClientToUpstream.SessionsSilent++
	}
	if ka.UpstreamPings > 0 {
		k.UpstreamToClient.SessionsPinging++
	} else {
		k.UpstreamToClient.SessionsSilent++
	}
	if ka.ClientPingIntervalMS != nil {
		t.c2uInt = append(t.c2uInt, ka.ClientPingIntervalMS.P50)
	}
	if ka.UpstreamPingIntervalMS != nil {
		t.u2cInt = append(t.u2cInt, ka.UpstreamPingIntervalMS.P50)
	}
	// The upstream answers the client's pings; the client the upstream's.
	up, cl := ka.UpstreamPongRTTMS, ka.ClientPongRTTMS
	if up == nil && cl == nil && ka.PongRTTMS != nil {
		if ka.ClientPings > 0 && ka.UpstreamPings == 0 {
			up = ka.PongRTTMS
		} else if ka.UpstreamPings > 0 && ka.ClientPings == 0 {
			cl = ka.PongRTTMS
		}
	}
	if up != nil {
		t.c2uRTT = append(t.c2uRTT, up.P50)
		t.c2uMax = max(t.c2uMax, up.Max)
	}
	if cl != nil {
		t.u2cRTT = append(t.u2cRTT, cl.P50)
		t.u2cMax = max(t.u2cMax, cl.Max)
	}
}

// addChart keeps the ping intervals of a session that was not upgraded.
func (t *keepaliveTally) addChart(ka *record.Keepalive) {
	if ka.ClientPingIntervalMS != nil {
		t.chartCl = append(t.chartCl, ka.ClientPingIntervalMS.P50)
	}
	if ka.UpstreamPingIntervalMS != nil {
		t.chartUp = append(t.chartUp, ka.UpstreamPingIntervalMS.P50)
	}
}

// summarizeKeepalive adds up the runs' keep-alive ledgers; each sample is
// gathered, summarised and let go before the next.
func (s *Summary) summarizeKeepalive() {
	k := &s.Keepalive
	var c2uMax, u2cMax float64
	for _, r := range s.runs {
		t := &r.tally.ka
		k.UnansweredPings += t.k.UnansweredPings
		addDirKeepalive(&k.ClientToUpstream, t.k.ClientToUpstream)
		addDirKeepalive(&k.UpstreamToClient, t.k.UpstreamToClient)
		c2uMax, u2cMax = max(c2uMax, t.c2uMax), max(u2cMax, t.u2cMax)
	}
	sample := func(of func(*keepaliveTally) []float64) quantiles {
		n := 0
		for _, r := range s.runs {
			n += len(of(&r.tally.ka))
		}
		v := make([]float64, 0, n)
		for _, r := range s.runs {
			v = append(v, of(&r.tally.ka)...)
		}
		return ownQuantiles(v)
	}
	k.ClientToUpstream.IntervalMS = sample(func(t *keepaliveTally) []float64 { return t.c2uInt })
	k.UpstreamToClient.IntervalMS = sample(func(t *keepaliveTally) []float64 { return t.u2cInt })
	k.ClientToUpstream.PongRTTMS = sample(func(t *keepaliveTally) []float64 { return t.c2uRTT })
	k.ClientToUpstream.PongRTTMS.Max = max(k.ClientToUpstream.PongRTTMS.Max, c2uMax)
	k.UpstreamToClient.PongRTTMS = sample(func(t *keepaliveTally) []float64 { return t.u2cRTT })
	k.UpstreamToClient.PongRTTMS.Max = max(k.UpstreamToClient.PongRTTMS.Max, u2cMax)
}

func addDirKeepalive(d *dirKeepalive, o dirKeepalive) {
	d.Pings += o.Pings
	d.SessionsPinging += o.SessionsPinging
	d.SessionsSilent += o.SessionsSilent
}
