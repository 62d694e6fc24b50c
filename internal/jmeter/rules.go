package jmeter

import (
	"strings"
)

// checkPings judges how the server's pings are answered. The plugin never
// answers a ping by itself: a Ping/Pong Frame Filter with replyToPing
// does, while a sampler in its scope reads (RFC 6455 §5.5.2 asks for a
// pong "as soon as is practical").
func checkPings(tg *ThreadGroup, t Timing, add func(rule, format string, a ...any)) {
	reply, discard, pass := tg.readers()
	var discarders []string
	for _, s := range discard {
		discarders = appendNew(discarders, "'"+nearestPingFilter(s).Name+"'")
	}
	switch {
	case len(discard) > 0:
		add(RulePingsDiscarded, "Ping/Pong Frame Filter %s takes pings without replying (replyToPing false) "+
			"while %s %s: the server's pings there are never answered", strings.Join(discarders, ", "), names(discard), verb(discard, "reads", "read"))
	case len(reply) == 0 && len(pass) == 0:
		add(RulePingsUnanswered, "no sampler reads a frame, and no Ping/Pong Frame Filter with replyToPing is in scope: "+
			"the server's pings are never answered")
	case len(reply) == 0:
		add(RulePingsUnanswered, "no Ping/Pong Frame Filter with replyToPing is in scope of %s: "+
			"the server's pings are never answered (a read gets the ping as an unexpected frame)", names(pass))
	}
	if len(reply) > 0 && len(pass) > 0 && len(discard) == 0 {
		add(RulePingsUnanswered, "%s %s with no Ping/Pong Frame Filter in scope: a ping that arrives then is "+
			"never answered (the sampler gets it as an unexpected frame)", names(pass), verb(pass, "reads", "read"))
	}
	if len(reply) > 0 && t.AnswerGap >= LatePong.Seconds() {
		add(RulePongsLate, "pings are answered only while %s %s; the longest gap between reads is %s, "+
			"so a pong can be %s late", names(reply), verb(reply, "reads", "read"), seconds(t.AnswerGap), seconds(t.AnswerGap))
	}
}

// readers sorts the samplers that read by what a ping arriving during
// their read meets: a filter that replies, one that discards, none.
func (tg *ThreadGroup) readers() (reply, discard, pass []*Sampler) {
	for _, s := range tg.Samplers() {
		if !s.Reads() {
			continue
		}
		switch s.Pings() {
		case "reply":
			reply = append(reply, s)
		case "discard":
			discard = append(discard, s)
		default:
			pass = append(pass, s)
		}
	}
	return reply, discard, pass
}

func nearestPingFilter(s *Sampler) Filter {
	for i := len(s.Filters) - 1; i >= 0; i-- {
		if s.Filters[i].Pings != "pass" {
			return s.Filters[i]
		}
	}
	return Filter{}
}

func appendNew(list []string, v string) []string {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}

// checkUpgrades judges the samplers that open a connection: the
// subprotocol they offer, the credential they carry, how often they run.
func checkUpgrades(tg *ThreadGroup, add func(rule, format string, a ...any)) {
	var bare []*Sampler
	var offered string
	shared := map[string][]*Sampler{}
	var tokens []string
	for _, s := range tg.connecting() {
		if p, _ := header(s.Headers, "Sec-WebSocket-Protocol"); strings.TrimSpace(string(p)) == "" {
			bare = append(bare, s)
		} else if offered == "" {
			offered = string(p)
		}
		if a, ok := header(s.Headers, "Authorization"); ok && sameForEveryThread(a) {
			shown := Header{Name: "Authorization", Value: a}.Shown()
			if shared[shown] == nil {
				tokens = append(tokens, shown)
			}
			shared[shown] = append(shared[shown], s)
		}
	}
	if len(bare) > 0 {
		also := ""
		if offered != "" {
			also = " (other upgrades of this group offer " + offered + ")"
		}
		add(RuleSubprotocol, "%s %s without Sec-WebSocket-Protocol%s: a platform that requires a "+
			"subprotocol refuses or closes these sessions", names(bare), verb(bare, "upgrades", "upgrade"), also)
	}
	if n, _, ok := tg.Threads.Int(); len(tokens) > 0 && (!ok || n > 1) {
		for _, tok := range tokens {
			add(RuleTokenShared, "all %s threads send the same Authorization %q on %s: a per-token session "+
				"cap counts them as one user; give each thread its own token (CSV Data Set Config)",
				string(tg.Threads), tok, names(shared[tok]))
		}
	}
	var storm []*Sampler
	for _, s := range tg.connecting() {
		if s.Repeats {
			storm = append(storm, s)
		}
	}
	if len(storm) > 0 {
		add(RuleNewConnectionLoop, "%s %s a new connection on every iteration of a loop: with %s threads "+
			"that is a connection storm; open once (Once Only Controller) and set createNewConnection false "+
			"on the samplers in the loop", names(storm), verb(storm, "opens", "open"), string(tg.Threads))
	}
}

// sameForEveryThread reports whether every thread sends the value: a
// literal, or a lone JMeter property (${__P(name)}, ${__property(name)}),
// which is one per test run, not one per thread.
func sameForEveryThread(v Value) bool {
	s := strings.TrimSpace(string(v))
	if !v.IsVariable() {
		return s != ""
	}
	rest := s
	for _, fn := range []string{"${__P(", "${__property("} {
		rest = strings.ReplaceAll(rest, fn, "")
	}
	return !strings.Contains(rest, "${")
}

// connecting lists the samplers that open a connection.
func (tg *ThreadGroup) connecting() []*Sampler {
	var out []*Sampler
	for _, s := range tg.Samplers() {
		if s.NewConnection {
			out = append(out, s)
		}
	}
	return out
}

// verb picks the singular or plural form for the samplers named.
func verb(ss []*Sampler, one, many string) string {
	if len(ss) == 1 {
		return one
	}
	return many
}
