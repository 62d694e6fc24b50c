package report

// keepaliveGroup is the keep-alive of one group of upgraded sessions — those
// that ended in 1006 and the others — judged against the platform: its own
// ping cadence and the idle timeout the causes inferred.
type keepaliveGroup struct {
	Group    string `json:"group"` // "1006" or "others"
	Sessions int    `json:"sessions"`
	// Sending counts the sessions whose client sent a data frame or a ping.
	Sending int `json:"sessions_sending"`
	// ClientLongestSilenceMS: over sessions, the client's longest silence,
	// its pongs not counted.
	ClientLongestSilenceMS quantiles `json:"client_longest_silence_ms"`
	// SlowestPongMS: over sessions that answered the platform's pings, their
	// slowest pong.
	SlowestPongMS quantiles `json:"slowest_pong_ms"`
	// LatePongs counts the sessions whose slowest pong came later than the
	// platform's own ping interval (the next ping was due).
	LatePongs int `json:"late_pongs"`
	// PingUnansweredAtEnd counts the sessions that ended with a platform
	// ping unanswered.
	PingUnansweredAtEnd int `json:"ping_unanswered_at_end"`
	// SilentPastIdle counts the sessions whose client was silent as long as
	// the shortest silence the idle timeout dropped, or longer.
	SilentPastIdle int `json:"silent_past_idle_timeout"`
}

// summarizeKeepaliveGroups fills the keep-alive of the 1006 sessions and of
// the others side by side.
func (s *Summary) summarizeKeepaliveGroups() {
	k := &s.Keepalive
	var cadence []float64
	for _, f := range s.facts {
		if f.upgraded && f.upstreamPingP50MS > 0 {
			cadence = append(cadence, f.upstreamPingP50MS)
		}
	}
	k.PlatformPingEveryMS = ownQuantiles(cadence).P50
	for _, c := range s.Causes {
		if c.Cause == CauseIdle {
			k.IdleTimeoutMS, s.idleLowMS = c.Seconds*1000, c.lowMS
		}
	}
	k.Groups = []keepaliveGroup{s.keepaliveGroup("1006", true), s.keepaliveGroup("others", false)}
}

func (s *Summary) keepaliveGroup(name string, abnormal bool) keepaliveGroup {
	g := keepaliveGroup{Group: name}
	var silence, pong []float64
	for _, f := range s.facts {
		if !f.upgraded || f.abnormal != abnormal {
			continue
		}
		g.Sessions++
		if f.clientSpoke {
			g.Sending++
		}
		silence = append(silence, f.clientMaxSilenceMS)
		if f.clientPongMaxMS >= 0 {
			pong = append(pong, f.clientPongMaxMS)
			if f.upstreamPingP50MS > 0 && f.clientPongMaxMS > f.upstreamPingP50MS {
				g.LatePongs++
			}
		}
		if f.pingToEndMS >= 0 {
			g.PingUnansweredAtEnd++
		}
		if s.idleLowMS > 0 && f.clientMaxSilenceMS >= s.idleLowMS {
			g.SilentPastIdle++
		}
	}
	g.ClientLongestSilenceMS, g.SlowestPongMS = ownQuantiles(silence), ownQuantiles(pong)
	return g
}
