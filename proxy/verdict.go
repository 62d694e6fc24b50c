package proxy

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/wstap/wstap/capture/record"
)

// finish fills the record of a session whose relay (or handshake) is over
// and hands it to the recorder. upgraded tells whether a 101 went through.
func (ss *wsSession) finish(upgraded bool) {
	now := time.Now()
	r := &ss.rec
	ss.mu.Lock()
	defer ss.mu.Unlock()
	end := ss.firstEnd
	if end == nil {
		end = &endCause{side: record.SideProxy, how: record.HowError, err: "session ended without a recorded cause", at: now}
	}
	r.End = record.End{At: end.at, First: end.side, How: end.how, Error: end.err}
	r.DurationMS = round3(ms(end.at.Sub(r.Start)))
	if upgraded {
		ss.finishUpgraded(end)
		r.ConcurrentAtEnd = int(ss.srv.active.Add(-1) + 1)
		ss.srv.Stats.Active.Add(-1)
		ss.srv.creds.closed(r.Credential)
	}
	// Shutdown is the verdict only when it is what ended the session: one
	// whose side had already ended TCP (a half-closed session the other
	// side kept open) keeps that side's verdict, and one with close frames
	// both ways is clean.
	if ss.stopping && end.how == record.HowShutdown && r.Verdict != record.VerdictClean {
		r.Verdict = record.VerdictShutdown
		r.End.First, r.End.How = record.SideProxy, record.HowShutdown
	}
	for _, f := range ss.srv.audit.End(ss.id, &r.Handshake, end.at) {
		ss.findingLocked(f)
	}
	ss.fillTLSEnds(upgraded)
	r.Findings = ss.findingsList()
	ss.srv.Stats.countVerdict(r.Verdict)
	if r.Abnormal {
		ss.srv.Stats.Abnormal.Add(1)
	}
	ss.event(levelForVerdict(r.Verdict), "end", "verdict", string(r.Verdict), "first", string(r.End.First), "how", string(r.End.How),
		"duration_ms", r.DurationMS, "concurrent_at_end", r.ConcurrentAtEnd)
	ss.srv.cfg.Recorder.Session(r)
}

// finishUpgraded fills frames, keep-alive, closes and the verdict of a
// session that got its 101 (docs/records.md, "Session record").
func (ss *wsSession) finishUpgraded(end *endCause) {
	r := &ss.rec
	cd, ud := ss.dirs[clientToUpstream], ss.dirs[upstreamToClient]
	r.Frames = record.Frames{ClientToUpstream: cd.counts, UpstreamToClient: ud.counts}
	clientSilence := ss.fillKeepalive(end)

	r.Close = record.Closes{Client: ss.closes[clientToUpstream], Upstream: ss.closes[upstreamToClient]}
	cc, uc := 1006, 1006 // RFC 6455 §7.1.5: no close frame received
	if c := ss.closes[upstreamToClient]; c != nil {
		cc = c.Code
	}
	if c := ss.closes[clientToUpstream]; c != nil {
		uc = c.Code
	}
	r.ClientCloseCode, r.UpstreamCloseCode = &cc, &uc
	r.Abnormal = cc == 1006
	ss.judge(end)
	ss.keepaliveFindings(clientSilence)
}

// fillKeepalive fills the record's ping/pong ledger and silences; it
// returns the client's silence before the end.
func (ss *wsSession) fillKeepalive(end *endCause) (clientSilence time.Duration) {
	cd, ud := ss.dirs[clientToUpstream], ss.dirs[upstreamToClient]
	l := &ss.ledger
	k := &ss.rec.Keepalive
	k.ClientPings, k.UpstreamPings = cd.counts.Ping, ud.counts.Ping
	k.ClientPingIntervalMS = intervals(l.pingTimes[clientToUpstream])
	k.UpstreamPingIntervalMS = intervals(l.pingTimes[upstreamToClient])
	k.PongRTTMS = rttOf(l.rtt[clientToUpstream], l.rtt[upstreamToClient])
	k.ClientPongRTTMS = rttOf(l.rtt[upstreamToClient])
	k.UpstreamPongRTTMS = rttOf(l.rtt[clientToUpstream])
	k.UnansweredPings = l.unanswered()
	k.UnsolicitedPongs = l.unsolicited
	k.ClientHeartbeats, k.UpstreamHeartbeats = int64(len(l.hbTimes[clientToUpstream])), int64(len(l.hbTimes[upstreamToClient]))
	k.ClientHeartbeatIntervalMS = intervals(l.hbTimes[clientToUpstream])
	k.UpstreamHeartbeatIntervalMS = intervals(l.hbTimes[upstreamToClient])
	k.LastAppClose = ss.appClose

	last := max(cd.last.Load(), ud.last.Load())
	final := end.at.Sub(time.Unix(0, last))
	k.SilenceBeforeEnd = round3(ms(final))
	k.MaxSilenceMS = round3(ms(max(cd.maxGap, ud.maxGap, final)))
	// The client's keep-alive silence: since its last data frame or ping
	// (its pongs answer the upstream and keep no idle timer of its own).
	clientSilence = end.at.Sub(time.Unix(0, cd.active.Load()))
	k.ClientSilenceBeforeEndMS = round3(ms(clientSilence))
	k.ClientMaxSilenceMS = round3(ms(max(cd.activeMaxGap, clientSilence)))
	if at, ok := l.oldestUnanswered(upstreamToClient); ok && !at.After(end.at) {
		v := round3(ms(end.at.Sub(at)))
		k.UnansweredPingBeforeEndMS = &v
	}
	return clientSilence
}

// judge gives the verdict of an upgraded session from its close frames and
// its first end.
func (ss *wsSession) judge(end *endCause) {
	r := &ss.rec
	cl, up := ss.closes[clientToUpstream], ss.closes[upstreamToClient]
	switch {
	case cl != nil && up != nil:
		r.Verdict = record.VerdictClean
		r.End.How = record.HowCloseHandshake
		r.End.First = record.SideClient
		if up.At.Before(cl.At) {
			r.End.First = record.SideUpstream
		}
	case up != nil:
		r.Verdict = record.VerdictClosedUpstream
		r.End.First = record.SideUpstream
	case end.side == record.SideProxy && end.how != record.HowShutdown:
		// wstap itself ended it: its TLS client failed, or an internal
		// error (docs/records.md, verdict proxy-error).
		r.Verdict = record.VerdictProxyError
	case cl != nil:
		r.Verdict = record.VerdictClosedClient
		r.End.First = record.SideClient
	case end.side == record.SideClient:
		r.Verdict = record.VerdictAbnormalClient
	default:
		r.Verdict = record.VerdictAbnormalUp
	}
}

// keepaliveFindings adds the keep-alive findings (issue 4, item 2).
func (ss *wsSession) keepaliveFindings(clientSilence time.Duration) {
	l, r := &ss.ledger, &ss.rec
	if l.latePongs > 0 {
		ss.findingLocked(record.Finding{Rule: "late-pong", Severity: record.SevWarn,
			Detail: fmt.Sprintf("the client answered %d upstream ping(s) later than %s (worst %s)", l.latePongs, ss.srv.cfg.LatePong, l.worstLate.Round(time.Millisecond))})
	}
	if n := len(l.pending[upstreamToClient]); n > 0 {
		ss.findingLocked(record.Finding{Rule: "unanswered-ping", Severity: record.SevWarn,
			Detail: fmt.Sprintf("%d upstream ping(s) got no pong from the client", n)})
	}
	dropped := r.Verdict == record.VerdictAbnormalUp || r.Verdict == record.VerdictClosedUpstream
	if dropped && clientSilence >= ss.srv.cfg.NoKeepalive {
		ss.findingLocked(record.Finding{Rule: "no-keepalive", Severity: record.SevWarn,
			Detail: fmt.Sprintf("the client sent no ping and no data during the last %s before the upstream dropped the session", clientSilence.Round(time.Millisecond))})
	}
}

func levelForVerdict(v record.Verdict) zerolog.Level {
	switch v {
	case record.VerdictProxyError:
		return zerolog.ErrorLevel
	case record.VerdictClean, record.VerdictClosedClient, record.VerdictClosedUpstream, record.VerdictShutdown:
		return zerolog.InfoLevel
	}
	return zerolog.WarnLevel
}
