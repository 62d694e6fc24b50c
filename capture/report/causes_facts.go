package report

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/wstap/wstap/capture/record"
)

// factsOf keeps what the causes need of one record of run number run.
func factsOf(run int, r *record.Session) *facts {
	f := &facts{}
	fillFacts(f, run, r, nil)
	return f
}

// fillFacts fills f with what the causes need of one record of run number
// run; lb, when set, labels end.first and end.how without the table's lock.
func fillFacts(f *facts, run int, r *record.Session, lb labeler) {
	ka := &r.Keepalive
	*f = facts{
		id: r.ID, target: r.Target, run: int32(run),
		upgraded: r.Handshake.Status == 101, abnormal: r.Abnormal, status: int16(r.Handshake.Status),
		first: lb.of(string(r.End.First)), how: lb.of(string(r.End.How)),
		opened: nanos(r.Start.Add(time.Duration(r.Handshake.LatencyMS * float64(time.Millisecond)))),
		end:    nanos(endTime(r)), concOpen: clamp32(r.ConcurrentAtOpen), credConc: clamp32(r.CredentialConcurrentAtOpen),
		clientSilenceMS: ka.ClientSilenceBeforeEndMS, clientMaxSilenceMS: ka.ClientMaxSilenceMS,
		pingToEndMS: -1, upstreamPings: clamp32(ka.UpstreamPings),
		upstreamPingP50MS: -1, clientPongP50MS: -1, clientPongMaxMS: -1,
		clientSpoke: ka.ClientPings > 0 || r.Frames.ClientToUpstream.Text+r.Frames.ClientToUpstream.Binary > 0,
	}
	if r.Credential != nil {
		f.credential = *r.Credential
	}
	f.lifeMS = max(0, float64(time.Duration(f.end-f.opened))/float64(time.Millisecond))
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
			f.tlsRenegs = clamp32(int64(f.tlsRenegs) + int64(leg.Renegotiations))
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
}

// clamp32 is n within the int32 range: a count of sessions or pings.
func clamp32[T int | int64](n T) int32 {
	return int32(max(min(int64(n), math.MaxInt32), math.MinInt32))
}

// labeler labels the end.first and end.how values of one run dir, without
// the table's lock once met.
type labeler map[string]label

func (lb labeler) of(s string) label {
	if l, ok := lb[s]; ok {
		return l
	}
	l := labelOf(s)
	if lb != nil {
		lb[s] = l
	}
	return l
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

// mergeOpenConcurrency gives every session its concurrency at open in each
// scope across all runs: a run's own recorded count (exact, counted by the
// proxy) plus the sessions of the other runs open at that instant (replayed
// from their times). A session without a recorded count (a run dir written
// before the field) gets its own run replayed too. A non-101 answer counts as
// the session it would have been: the sessions open plus one.
//
// The replay is one sweep over the sessions by open and by end (two lists of
// indexes), counting the open upgraded sessions of each run in each scope
// (all, a credential, a target).
func mergeOpenConcurrency(all []*facts, runs int) {
	byOpen, byEnd := sweepOrders(all)
	scopes := newOpenScopes(all, runs)
	e := 0
	for g := 0; g < len(byOpen); {
		// At t, the sessions opened at or before t and not ended by t.
		t, h := all[byOpen[g]].opened, g
		for ; h < len(byOpen) && all[byOpen[h]].opened == t; h++ {
			if f := all[byOpen[h]]; f.upgraded {
				scopes.add(f, 1)
			}
		}
		for ; e < len(byEnd) && all[byEnd[e]].end <= t; e++ {
			scopes.add(all[byEnd[e]], -1)
		}
		for _, i := range byOpen[g:h] {
			scopes.count(all[i])
		}
		g = h
	}
}

// sweepOrders lists the sessions by open (all) and the upgraded ones by end,
// as indexes into all.
func sweepOrders(all []*facts) (byOpen, byEnd []int32) {
	byOpen = make([]int32, len(all))
	n := 0
	for i, f := range all {
		byOpen[i] = int32(i)
		if f.upgraded {
			n++
		}
	}
	byEnd = make([]int32, 0, n)
	for i, f := range all {
		if f.upgraded {
			byEnd = append(byEnd, int32(i))
		}
	}
	slices.SortFunc(byOpen, func(a, b int32) int { return cmp.Compare(all[a].opened, all[b].opened) })
	slices.SortFunc(byEnd, func(a, b int32) int { return cmp.Compare(all[a].end, all[b].end) })
	return byOpen, byEnd
}

// openScopes counts, during the sweep, the upgraded sessions open in each
// scope, by run.
type openScopes struct {
	all                *scopeCount
	credential, target map[string]*scopeCount
}

// scopeCount is one scope: the sessions open in it, in all and by run, and
// the runs that have an upgraded session in it at all.
type scopeCount struct {
	total int32
	byRun []int32
	has   []bool
}

func newScopeCount(runs int) *scopeCount {
	return &scopeCount{byRun: make([]int32, runs), has: make([]bool, runs)}
}

// newOpenScopes makes the scopes of the upgraded sessions of all.
func newOpenScopes(all []*facts, runs int) *openScopes {
	o := &openScopes{all: newScopeCount(runs), credential: map[string]*scopeCount{}, target: map[string]*scopeCount{}}
	get := func(m map[string]*scopeCount, k string) *scopeCount {
		c := m[k]
		if c == nil {
			c = newScopeCount(runs)
			m[k] = c
		}
		return c
	}
	for _, f := range all {
		if f.upgraded {
			o.all.has[f.run] = true
			get(o.credential, f.credential).has[f.run] = true
			get(o.target, f.target).has[f.run] = true
		}
	}
	return o
}

// add opens (d = 1) or ends (d = -1) an upgraded session in its scopes.
func (o *openScopes) add(f *facts, d int32) {
	for _, c := range []*scopeCount{o.all, o.credential[f.credential], o.target[f.target]} {
		c.total += d
		c.byRun[f.run] += d
	}
}

// count sets f's concurrency at open in each scope from the counts at its
// open: the other runs' open sessions, and its own run's recorded count (or,
// without one, its open sessions), where that run has the scope at all.
func (o *openScopes) count(f *facts) {
	ownAll, ownCred := f.concOpen, f.credConc
	if !f.upgraded && ownAll > 0 {
		ownAll++ // recorded: the sessions open when it was refused
		if f.credential != "" {
			ownCred++
		}
	}
	f.concOpen = o.all.at(f, ownAll)
	f.targetConc = o.target[f.target].at(f, 0)
	if f.credential != "" {
		f.credConc = o.credential[f.credential].at(f, ownCred)
	}
}

// at is f's concurrency in scope c (nil: no upgraded session has it), with
// own its run's recorded count (0: none).
func (c *scopeCount) at(f *facts, own int32) int32 {
	var n int32
	if c != nil {
		n = c.total - c.byRun[f.run]
		if c.has[f.run] {
			if own > 0 {
				n += own
			} else {
				n += c.byRun[f.run]
			}
		}
	}
	if !f.upgraded && own == 0 {
		n++
	}
	return n
}
