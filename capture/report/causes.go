package report

import (
	"sort"
	"time"
)

// Cause names (docs/records.md, "Causes and explanations").
const (
	CauseCap         = "concurrency-cap"
	CauseIdle        = "idle-timeout"
	CausePing        = "ping-timeout"
	CauseLifetime    = "session-lifetime"
	CauseTLS         = "tls"
	CauseClientDrop  = "client-drop"
	CauseProxy       = "proxy"
	CauseUnexplained = "unexplained"
)

// Cap scopes: what a concurrency cap counts.
const (
	ScopeAll        = "all"
	ScopeCredential = "credential"
	ScopeTarget     = "target"
)

// Cause is one reason sessions ended in 1006, with the sessions attributed to
// it and the evidence. Every 1006 session is attributed to exactly one cause.
type Cause struct {
	Cause string `json:"cause"`
	// Sessions counts the 1006 sessions attributed to this cause; Rejected the
	// non-101 answers (a cap that refuses the upgrade instead of dropping).
	Sessions int `json:"sessions"`
	Rejected int `json:"rejected"`
	// Scope, Credential, Target and Level describe a concurrency cap: Level is
	// the most sessions in scope open at once that it let live.
	Scope      string `json:"scope,omitempty"`
	Credential string `json:"credential,omitempty"`
	Target     string `json:"target,omitempty"`
	Level      int    `json:"level,omitempty"`
	// Seconds is the timeout or lifetime inferred from the records.
	Seconds  float64  `json:"seconds,omitempty"`
	Evidence string   `json:"evidence"`
	Examples []string `json:"examples"`

	// members are the facts of the sessions and rejections attributed here,
	// for the figures of the text and HTML report.
	members []*facts
	// lowMS is the shortest value of a timer's drops (its variable at their
	// end): a session whose variable reached it met the timer.
	lowMS  float64
	figure *causeFigure
}

// facts is what the causes need of one session: a few numbers, so a report
// over a million sessions keeps little per session (184 bytes: times in Unix
// ns, counts in 32 bits, end.first and end.how as labels).
type facts struct {
	id         string
	target     string
	credential string

	// opened: when the 101 (or other answer) reached the client; end: when
	// the session ended; both Unix ns (see nanos).
	opened, end int64
	// lifeMS is the time from the 101 to the end.
	lifeMS float64

	// clientSilenceMS is the client's silence before the end, its pongs not
	// counted; clientMaxSilenceMS its longest such silence.
	clientSilenceMS    float64
	clientMaxSilenceMS float64
	// pingToEndMS is the time from the upstream's oldest unanswered ping to
	// the end, or -1 when every upstream ping was answered.
	pingToEndMS float64
	// The upstream's median ping interval and the client's pong round
	// trips (-1 when none).
	upstreamPingP50MS float64
	clientPongP50MS   float64
	clientPongMaxMS   float64

	// handshakeRules: the handshake rules (warn and error) the session broke.
	handshakeRules []string

	// concOpen, credConc and targetConc: upgraded sessions open when this one
	// opened, in each scope, itself included (across every merged run).
	concOpen, credConc, targetConc int32
	upstreamPings                  int32
	// For the explanations: TLS legs present and their renegotiations.
	tlsRenegs int32
	run       int32
	status    int16 // the upgrade's answer status
	first     label // end.first
	how       label // end.how
	tlsLegs   uint8

	upgraded bool
	abnormal bool // the client saw 1006
	tlsEnd   bool // the session ended in a TLS failure after its upgrade
	latePong bool // it had a late-pong finding
	// clientSpoke: the client sent a ping or a data frame.
	clientSpoke bool
}

// endTime is the session's end as a time.
func (f *facts) endTime() time.Time { return time.Unix(0, f.end).UTC() }

// upstreamDrop reports whether the upstream ended the session without a
// close frame after its upgrade: the sessions a platform's timer or cap drops.
func (f *facts) upstreamDrop() bool {
	return f.abnormal && f.first == labelUpstream && !f.tlsEnd
}

// rejected reports whether the upgrade was answered with an error status.
func (f *facts) rejected() bool { return !f.upgraded && f.status >= 400 }

// attribution is the state of the causes analysis: the causes found so far
// and which 1006 sessions are still unattributed.
type attribution struct {
	all    []*facts
	causes []*Cause
	owner  map[*facts]*Cause
}

// inferCauses attributes every 1006 session of the merged runs to one cause:
// first what the record says directly (wstap itself, the client, TLS), then
// the platform's timers (a cluster of the variable the timer acts on, checked
// against the sessions that outlived it), then concurrency caps (drops and
// refusals above a level of sessions open at open, in the scope that explains
// them best), and the rest as unexplained.
func inferCauses(all []*facts) []*Cause {
	a := &attribution{all: all, owner: map[*facts]*Cause{}}
	a.direct()
	a.timers()
	a.caps()
	a.rest()
	sort.SliceStable(a.causes, func(i, j int) bool {
		x, y := a.causes[i], a.causes[j]
		if x.Sessions+x.Rejected != y.Sessions+y.Rejected {
			return x.Sessions+x.Rejected > y.Sessions+y.Rejected
		}
		return x.Cause < y.Cause
	})
	for _, c := range a.causes {
		c.Examples = examples(c.members, 3)
	}
	return a.causes
}

// unattributed lists the 1006 sessions no cause holds yet that pass keep.
func (a *attribution) unattributed(keep func(*facts) bool) []*facts {
	var out []*facts
	for _, f := range a.all {
		if f.abnormal && a.owner[f] == nil && keep(f) {
			out = append(out, f)
		}
	}
	return out
}

// add records a cause and gives it its members.
func (a *attribution) add(c *Cause, members []*facts) {
	for _, f := range members {
		a.owner[f] = c
		if f.abnormal {
			c.Sessions++
		} else {
			c.Rejected++
		}
	}
	c.members = append(c.members, members...)
	a.causes = append(a.causes, c)
}

// direct attributes what the record itself says: wstap ended the session
// (its own error or its shutdown), the client's TCP ended first, or a TLS
// failure ended it.
func (a *attribution) direct() {
	proxy := a.unattributed(func(f *facts) bool { return f.first == labelProxy })
	if len(proxy) > 0 {
		a.add(&Cause{Cause: CauseProxy, Evidence: proxyEvidence(proxy)}, proxy)
	}
	client := a.unattributed(func(f *facts) bool { return f.first == labelClient && !f.tlsEnd })
	if len(client) > 0 {
		a.add(&Cause{Cause: CauseClientDrop, Evidence: clientDropEvidence(client)}, client)
	}
	tls := a.unattributed(func(f *facts) bool { return f.tlsEnd })
	if len(tls) > 0 {
		a.add(&Cause{Cause: CauseTLS, Evidence: tlsEvidence(tls)}, tls)
	}
}

// rest gathers the 1006 sessions no cause explains.
func (a *attribution) rest() {
	left := a.unattributed(func(*facts) bool { return true })
	if len(left) > 0 {
		a.add(&Cause{Cause: CauseUnexplained, Evidence: unexplainedEvidence(left)}, left)
	}
}

// examples lists up to n member ids, 1006 sessions first.
func examples(members []*facts, n int) []string {
	out := []string{}
	for _, pass := range []bool{true, false} {
		for _, f := range members {
			if len(out) == n {
				return out
			}
			if f.abnormal == pass {
				out = append(out, f.id)
			}
		}
	}
	return out
}
