package report

import (
	"slices"
	"sort"
	"time"

	"github.com/wstap/wstap/capture/record"
)

// factsOf keeps what the causes need of one record of run number run.
func factsOf(run int, r *record.Session) *facts {
	ka := &r.Keepalive
	f := &facts{
		id: r.ID, target: r.Target, run: run,
		upgraded: r.Handshake.Status == 101, abnormal: r.Abnormal, status: r.Handshake.Status,
		first: string(r.End.First), how: string(r.End.How),
		opened: r.Start.Add(time.Duration(r.Handshake.LatencyMS * float64(time.Millisecond))),
		end:    r.End.At, concOpen: r.ConcurrentAtOpen, credConc: r.CredentialConcurrentAtOpen,
		clientSilenceMS: ka.ClientSilenceBeforeEndMS, clientMaxSilenceMS: ka.ClientMaxSilenceMS,
		pingToEndMS: -1, upstreamPings: ka.UpstreamPings, clientPings: ka.ClientPings,
		upstreamPingP50MS: -1, clientPongP50MS: -1, clientPongMaxMS: -1,
		clientDataFrames: r.Frames.ClientToUpstream.Text + r.Frames.ClientToUpstream.Binary,
	}
	if r.Credential != nil {
		f.credential = *r.Credential
	}
	if f.end.IsZero() {
		f.end = r.Start.Add(time.Duration(r.DurationMS * float64(time.Millisecond)))
	}
	f.lifeMS = max(0, float64(f.end.Sub(f.opened))/float64(time.Millisecond))
	f.tlsEnd = f.upgraded && r.End.How == record.HowTLSError
	if f.clientMaxSilenceMS < f.clientSilenceMS {
		f.clientMaxSilenceMS = f.clientSilenceMS // records written before the field
	}
	if ka.UnansweredPingBeforeEndMS != nil {
		f.pingToEndMS = *ka.UnansweredPingBeforeEndMS
	}
	if ka.UpstreamPingIntervalMS != nil {
		f.upstreamPingP50MS = ka.UpstreamPingIntervalMS.P50
	}
	if rtt := ka.ClientPongRTTMS; rtt != nil {
		f.clientPongP50MS, f.clientPongMaxMS = rtt.P50, rtt.Max
	}
	for _, leg := range []*record.TLSLeg{r.TLS.Client, r.TLS.Upstream} {
		if leg != nil {
			f.tlsLegs++
			f.tlsRenegs += leg.Renegotiations
		}
	}
	for _, fd := range r.Findings {
		switch {
		case fd.Rule == "late-pong":
			f.latePong = true
		case handshakeRules[fd.Rule] && fd.Severity != record.SevInfo:
			f.handshakeRules = append(f.handshakeRules, fd.Rule)
		}
	}
	return f
}

// handshakeRules are the audit's rules on the upgrade exchange
// (proxy/audit.go); status-not-101 is left out (the refusal is counted
// itself), and so are token-shared and token-expiring, which speak to a cap
// per credential and a lifetime.
var handshakeRules = map[string]bool{
	"upgrade-token": true, "connection-token": true, "version": true, "key-format": true,
	"method-version": true, "host-missing": true, "duplicate-header": true,
	"subprotocol-none-offered": true, "compression-offered": true, "accept-missing": true,
	"accept-mismatch": true, "subprotocol-not-offered": true, "subprotocol-ignored": true,
	"extension-not-offered": true, "response-upgrade-token": true, "key-reused": true,
}

// openCounter counts, for one run and one key, the upgraded sessions open at
// an instant from their open and end times (Unix ns: a million sessions
// take 16 MB a scope).
type openCounter struct{ opens, ends []int64 }

func (c *openCounter) add(f *facts) {
	c.opens = append(c.opens, nanos(f.opened))
	c.ends = append(c.ends, nanos(f.end))
}

func (c *openCounter) sort() {
	slices.Sort(c.opens)
	slices.Sort(c.ends)
}

// at counts the sessions opened at or before t and not ended by t.
func (c *openCounter) at(t int64) int {
	o := sort.Search(len(c.opens), func(i int) bool { return c.opens[i] > t })
	e := sort.Search(len(c.ends), func(i int) bool { return c.ends[i] > t })
	return o - e
}

// mergeOpenConcurrency gives every session its concurrency at open in each
// scope across all runs: a run's own recorded count (exact, counted by the
// proxy) plus the sessions of the other runs open at that instant (replayed
// from their times). A session without a recorded count (a run dir written
// before the field) gets its own run replayed too. A non-101 answer counts as
// the session it would have been: the sessions open plus one.
func mergeOpenConcurrency(all []*facts, runs int) {
	counters := map[string][]*openCounter{} // key → by run (nil: none)
	get := func(k string, run int) *openCounter {
		byRun := counters[k]
		if byRun == nil {
			byRun = make([]*openCounter, runs)
			counters[k] = byRun
		}
		if byRun[run] == nil {
			byRun[run] = &openCounter{}
		}
		return byRun[run]
	}
	for _, f := range all {
		if f.upgraded {
			get("*", f.run).add(f)
			get("c"+f.credential, f.run).add(f)
			get("t"+f.target, f.run).add(f)
		}
	}
	for _, byRun := range counters {
		for _, c := range byRun {
			if c != nil {
				c.sort()
			}
		}
	}
	count := func(f *facts, k string, own int) int {
		n := 0
		for r, c := range counters[k] {
			switch {
			case c == nil:
			case r == f.run && own > 0:
				n += own
			default:
				n += c.at(nanos(f.opened))
			}
		}
		if !f.upgraded && own == 0 {
			n++
		}
		return n
	}
	for _, f := range all {
		ownAll, ownCred := f.concOpen, f.credConc
		if !f.upgraded && ownAll > 0 {
			ownAll++ // recorded: the sessions open when it was refused
			if f.credential != "" {
				ownCred++
			}
		}
		f.concOpen = count(f, "*", ownAll)
		f.targetConc = count(f, "t"+f.target, 0)
		if f.credential != "" {
			f.credConc = count(f, "c"+f.credential, ownCred)
		}
	}
}
