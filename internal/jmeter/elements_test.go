package jmeter

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func readFixture(t *testing.T, name string) *Plan {
	t.Helper()
	p, err := ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func group(t *testing.T, p *Plan, name string) *ThreadGroup {
	t.Helper()
	for _, tg := range p.ThreadGroups {
		if tg.Name == name {
			return tg
		}
	}
	t.Fatalf("%s: no thread group %q", p.File, name)
	return nil
}

func samplerNamed(t *testing.T, tg *ThreadGroup, name string) *Sampler {
	t.Helper()
	for _, s := range tg.Samplers() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("thread group %q: no sampler %q", tg.Name, name)
	return nil
}

func kinds(tg *ThreadGroup) []Kind {
	var out []Kind
	for _, s := range tg.Samplers() {
		out = append(out, s.Kind)
	}
	return out
}

// TestPlanNested: samplers in run order through a transaction, a loop and
// an if controller; a timer at the loop's level before each sampler in it.
func TestPlanNested(t *testing.T) {
	tg := group(t, readFixture(t, "nested-controllers.jmx"), "Nested controllers")
	if got, want := kinds(tg), []Kind{KindOpen, KindWrite, KindRequestResponse, KindClose}; !slices.Equal(got, want) {
		t.Errorf("kinds %v, want %v", got, want)
	}
	post := samplerNamed(t, tg, "post")
	if want := []string{"conversation", "five messages ×5", "if joined"}; !slices.Equal(post.In, want) {
		t.Errorf("'post' in %q, want %q", post.In, want)
	}
	for _, name := range []string{"type", "post"} {
		s := samplerNamed(t, tg, name)
		if len(s.Timers) != 1 || s.Timers[0].Name != "pace" || s.Timers[0].MaxSeconds() != 4 || !s.Repeats {
			t.Errorf("%q: timers %+v, repeats %v; want the 4 s 'pace' timer, repeating", name, s.Timers, s.Repeats)
		}
	}
	if c := samplerNamed(t, tg, "connect"); c.Repeats || len(c.Timers) != 0 {
		t.Errorf("'connect': repeats %v, timers %+v; want once, no timer", c.Repeats, c.Timers)
	}
}

// TestPlanDisabled: a disabled thread group, sampler, loop, filter and
// header manager are skipped with what is under them.
func TestPlanDisabled(t *testing.T) {
	p := readFixture(t, "disabled.jmx")
	if len(p.ThreadGroups) != 1 {
		t.Fatalf("%d thread groups, want 1 (the disabled one skipped)", len(p.ThreadGroups))
	}
	tg := p.ThreadGroups[0]
	for _, s := range tg.Samplers() {
		if strings.Contains(s.Name, "reconnect") || s.Kind == KindUnknown {
			t.Errorf("disabled or unknown sampler %q read", s.Name)
		}
		if len(s.Filters) != 0 {
			t.Errorf("%q: filters %+v, want none (the filter is disabled)", s.Name, s.Filters)
		}
	}
	c := samplerNamed(t, tg, "connect")
	if v, _ := header(c.Headers, "Authorization"); v != "Bearer ${token}" {
		t.Errorf("Authorization %q, want the enabled manager's Bearer ${token}", v)
	}
}

// TestPlanUnknown: unknown elements are listed in place, never fatal, and
// the samplers under an unknown controller are still read.
func TestPlanUnknown(t *testing.T) {
	p := readFixture(t, "unknown-elements.jmx")
	if want := []Element{{"kg.apc.jmeter.perfmon.PerfMonCollector", "server metrics"}}; !slices.Equal(p.Unknown, want) {
		t.Errorf("plan unknown %v, want %v", p.Unknown, want)
	}
	tg := p.ThreadGroups[0]
	var unknown []string
	for _, s := range tg.Samplers() {
		if s.Kind == KindUnknown {
			unknown = append(unknown, s.Class)
		}
	}
	want := []string{"JSR223Timer", "HTTPSamplerProxy", "kg.apc.jmeter.control.ParameterizedController", "ModuleController"}
	if !slices.Equal(unknown, want) {
		t.Errorf("unknown %q, want %q", unknown, want)
	}
	if s := samplerNamed(t, tg, "inside plugin controller"); s.Pings() != "reply" {
		t.Errorf("sampler under the unknown controller: pings %q, want reply", s.Pings())
	}
	if !strings.HasSuffix(tg.Summary(), "; 4 unknown element(s) not judged") {
		t.Errorf("summary %q does not count the unknown elements", tg.Summary())
	}
}

// TestPlanVariables: ${...} kept as written; a lone ${__P(name,default)}
// counts as its default.
func TestPlanVariables(t *testing.T) {
	tg := group(t, readFixture(t, "variables.jmx"), "Parameterised")
	c := samplerNamed(t, tg, "connect")
	if c.Server != "${__P(host)}" || c.Port != "${__P(port,443)}" || c.Path != "${__P(path,/chat)}" {
		t.Errorf("server %q port %q path %q, want the text as written", c.Server, c.Port, c.Path)
	}
	if tg.Threads != "${__P(threads,50)}" || !tg.Repeats() {
		t.Errorf("threads %q, repeats %v; want the text, and loops ${__P(loops,-1)} read as -1", tg.Threads, tg.Repeats())
	}
	// 'listen' waits ${readTimeout}: unknown, so the plugin's 6 s default
	if g := tg.Timing().SendGap; g != 6 {
		t.Errorf("send gap %g s, want 6", g)
	}
	b, err := json.Marshal(Judge(&Plan{ThreadGroups: []*ThreadGroup{tg}}, 60e9))
	if err != nil || !strings.Contains(string(b), `"threads":"${__P(threads,50)}"`) {
		t.Errorf("JSON %s (%v) lacks the threads as text", b, err)
	}
}

// TestPlanFilters: which filter takes a ping, and that the nearest decides.
func TestPlanFilters(t *testing.T) {
	for _, c := range []struct{ file, group, sampler, pings string }{
		{"reply-and-discard.jmx", "Replies to pings", "wait for messages", "reply"},
		{"reply-and-discard.jmx", "Discards pings", "wait for messages", "discard"},
		{"pong-only-filter.jmx", "Filters pongs, text and binary only", "listen", "pass"},
		{"no-filter.jmx", "No filter", "receive", "pass"},
		{"plan-level-config.jmx", "Plan filter replies", "listen", "reply"},
		{"plan-level-config.jmx", "Group filter discards", "listen", "discard"},
	} {
		s := samplerNamed(t, group(t, readFixture(t, c.file), c.group), c.sampler)
		if got := s.Pings(); got != c.pings {
			t.Errorf("%s %q %q: pings %q, want %q (filters %+v)", c.file, c.group, c.sampler, got, c.pings, s.Filters)
		}
	}
	s := samplerNamed(t, readFixture(t, "pong-only-filter.jmx").ThreadGroups[0], "listen")
	if len(s.Filters) != 3 {
		t.Errorf("filters %+v, want the ping, text and binary filters", s.Filters)
	}
}

// TestPlanSummary: the one line per thread group.
func TestPlanSummary(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"think-time.jmx", "'Chat with think time': 100 threads, ramp-up 10 s, loops until the test ends; silent for up to 30 s; never pings; answers pings only while reading, up to 30 s late"},
		{"clean.jmx", "'Keeps alive and answers': 100 threads, ramp-up 60 s, loops until the test ends; silent for up to 25 s; pings at least every 25 s; answers pings only while reading, up to 0 s late"},
		{"scheduler.jmx", "'Half an hour': 500 threads, ramp-up 300 s, loops for 1800 s; silent for up to 37 s; never pings; answers pings only while reading, up to 35 s late"},
		{"no-filter.jmx", "'No filter': 20 threads, ramp-up 10 s, loops until the test ends; silent for up to 10 s; never pings; never answers the server's pings"},
		{"plan-level-config.jmx", "'Plan filter replies': 10 threads, ramp-up 10 s, loops until the test ends; silent for up to 5 s; never pings; answers pings only while reading, up to 0 s late"},
	} {
		if got := readFixture(t, c.file).ThreadGroups[0].Summary(); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.file, got, c.want)
		}
	}
}

// TestPlanRedacted: a literal token never leaves the package unredacted.
func TestPlanRedacted(t *testing.T) {
	p := readFixture(t, "token-shared.jmx")
	b, err := json.Marshal(Judge(p, 60e9))
	if err != nil {
		t.Fatal(err)
	}
	const jwt = "eyJhbGciOiJIUzI1NiJ9"
	if strings.Contains(string(b), jwt) {
		t.Errorf("JSON holds the token: %s", b)
	}
	if !strings.Contains(string(b), `"value":"Bearer [redacted]"`) {
		t.Errorf("JSON lacks the redacted header: %s", b)
	}
	if v, _ := header(samplerNamed(t, group(t, p, "Literal token"), "connect and send").Headers, "Authorization"); !strings.Contains(string(v), jwt) {
		t.Errorf("the Go value %q is not kept as written", v)
	}
}

func TestPlanValueInt(t *testing.T) {
	for _, c := range []struct {
		in          Value
		n           int64
		assumed, ok bool
	}{
		{"30000", 30000, false, true},
		{" -1 ", -1, false, true},
		{"${__P(threads,50)}", 50, true, true},
		{"${__P(loops, -1)}", -1, true, true},
		{"${__property(port,,443)}", 443, true, true},
		{"${__P(host)}", 0, false, false},
		{"${readTimeout}", 0, false, false},
		{"", 0, false, false},
	} {
		n, assumed, ok := c.in.Int()
		if n != c.n || assumed != c.assumed || ok != c.ok {
			t.Errorf("Value(%q).Int() = %d, %v, %v; want %d, %v, %v", c.in, n, assumed, ok, c.n, c.assumed, c.ok)
		}
	}
}
