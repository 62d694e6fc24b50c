package jmeter

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fixtures is the folder of test plans: each is written for this
// package, in the form JMeter 5.6 saves a plan.
const fixtures = "../../testdata/jmx"

// planWant is a finding expected in a thread group; detail is a piece of
// its text that carries the numbers.
type planWant struct{ group, rule, detail string }

type planCase struct {
	file string
	idle time.Duration
	err  string // a file that is not a plan: a piece of the error
	want []planWant
}

// planCases: every fixture of the folder is checked at least once, and the
// findings of each must be exactly those listed.
var planCases = []planCase{
	{file: "reply-and-discard.jmx", want: []planWant{
		{"Discards pings", RulePingsDiscarded, "'Ping/Pong filter' takes pings without replying"},
	}},
	{file: "no-filter.jmx", want: []planWant{
		{"No filter", RulePingsUnanswered, "in scope of 'send', 'receive'"},
	}},
	{file: "think-time.jmx", want: []planWant{
		{"Chat with think time", RulePongsLate, "the longest gap between reads is 30 s"},
	}},
	// uniform 20 s + 10 s before both samplers, Gaussian 10 s + 3 × 5 s
	// before 'post' only: 30 + 55 s between two reads of 'post'.
	{file: "random-timers.jmx", want: []planWant{
		{"Random think time", RulePongsLate, "the longest gap between reads is 85 s"},
	}},
	// the longest silence is the 55 s before 'post'
	{file: "random-timers.jmx", idle: 50 * time.Second, want: []planWant{
		{"Random think time", RulePongsLate, "85 s"},
		{"Random think time", RuleNoKeepalive, "for 55 s, longer than the idle timeout of 50 s"},
	}},
	{file: "no-keepalive.jmx", want: []planWant{
		{"Listen only", RuleNoKeepalive, "for as long as it stays open"},
		{"Listen, then acknowledge", RuleNoKeepalive, "for 90 s, longer than the idle timeout of 60 s"},
	}},
	{file: "no-keepalive.jmx", idle: 2 * time.Minute, want: []planWant{
		{"Listen only", RuleNoKeepalive, "longer than the idle timeout of 120 s"},
	}},
	{file: "subprotocol.jmx", want: []planWant{
		{"Without subprotocol", RuleSubprotocol, "'connect and send' upgrades without Sec-WebSocket-Protocol"},
		{"Empty subprotocol", RuleSubprotocol, "'connect and send'"},
	}},
	{file: "token-shared.jmx", want: []planWant{
		{"Literal token", RuleTokenShared, `all 200 threads send the same Authorization "Bearer [redacted]"`},
		{"Token from a property", RuleTokenShared, `"Bearer ${__P(token)}"`},
	}},
	{file: "new-connection.jmx", want: []planWant{
		{"Reconnects every loop", RuleNewConnectionLoop, "'connect and send' opens a new connection on every iteration"},
		{"Inner loop reconnects", RuleNewConnectionLoop, "'connect and type'"},
	}},
	// 4 s of 'pace' before 'type' and again before 'post'
	{file: "nested-controllers.jmx", want: []planWant{
		{"Nested controllers", RulePongsLate, "while 'post', 'bye' read; the longest gap between reads is 8 s"},
	}},
	{file: "variables.jmx", want: []planWant{
		{"Parameterised", RuleTokenShared, "all ${__P(threads,50)} threads"},
	}},
	{file: "disabled.jmx", want: []planWant{
		{"Filter disabled", RulePingsUnanswered, "in scope of 'send', 'listen'"},
	}},
	{file: "unknown-elements.jmx"},
	{file: "clean.jmx"},
	// the 120 s pauses run before 'connect' and 'second', after a close
	// sampler closed the connection before: no connection is silent.
	{file: "close-reconnect.jmx", want: []planWant{
		{"Short sessions", RulePingsUnanswered, "in scope of 'bye'"},
		{"Short sessions", RuleNewConnectionLoop, "'connect' opens"},
		{"Two sessions in a row", RulePingsUnanswered, "in scope of 'bye 1', 'bye 2'"},
	}},
	{file: "pong-only-filter.jmx", want: []planWant{
		{"Filters pongs, text and binary only", RulePingsUnanswered, "'send', 'listen'"},
	}},
	{file: "scheduler.jmx", want: []planWant{
		{"Half an hour", RulePongsLate, "the longest gap between reads is 35 s"},
	}},
	{file: "plan-level-config.jmx", want: []planWant{
		{"Group filter discards", RulePingsDiscarded, "'group Ping/Pong filter'"},
	}},
	{file: "not-a-plan.jmx", err: "not-a-plan.jmx is not a JMeter test plan: root element is <project>"},
	{file: "not-xml.jmx", err: "not-xml.jmx is not a JMeter test plan: no XML element in it"},
}

func TestPlanFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(fixtures, "*.jmx"))
	if err != nil || len(files) < 15 {
		t.Fatalf("want at least 15 fixtures in %s, got %d (%v)", fixtures, len(files), err)
	}
	for _, f := range files {
		base := filepath.Base(f)
		if !slices.ContainsFunc(planCases, func(c planCase) bool { return c.file == base }) {
			t.Errorf("fixture %s has no case in planCases", base)
		}
	}
	for _, c := range planCases {
		idle := c.idle
		if idle == 0 {
			idle = 60 * time.Second
		}
		t.Run(fmt.Sprintf("%s/idle=%s", c.file, idle), func(t *testing.T) {
			p, err := ReadFile(filepath.Join(fixtures, c.file))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkFindings(t, Check(p, idle), c.want)
		})
	}
}

// checkFindings fails unless got holds exactly the findings of want, in
// any order, each detail containing the wanted piece.
func checkFindings(t *testing.T, got []Finding, want []planWant) {
	t.Helper()
	key := func(group, rule string) string { return group + " / " + rule }
	var g, w []string
	for _, f := range got {
		g = append(g, key(f.ThreadGroup, f.Rule))
	}
	for _, x := range want {
		w = append(w, key(x.group, x.rule))
	}
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Errorf("findings\n  %s\nwant\n  %s", strings.Join(g, "\n  "), strings.Join(w, "\n  "))
	}
	for _, x := range want {
		for _, f := range got {
			if f.ThreadGroup == x.group && f.Rule == x.rule && !strings.Contains(f.Detail, x.detail) {
				t.Errorf("%s: detail %q lacks %q", key(x.group, x.rule), f.Detail, x.detail)
			}
		}
	}
}
