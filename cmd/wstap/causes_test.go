package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wstap/wstap/capture/report"
	"github.com/wstap/wstap/internal/testkit"
)

// The causes tests: a gorilla/websocket platform with the habits of real
// ones (testkit.Habits), gorilla clients that behave as load-test clients do,
// one or two wstap proxies between them, and the report's causes and
// explanations judged on the records.

// clientGroup is a number of clients of one behaviour, started together
// after a delay, through proxy number via.
type clientGroup struct {
	name  string
	n     int
	after time.Duration
	via   int
	c     testkit.Client
}

// causesRun starts the platform and proxies proxies in front of it, runs the
// groups, stops the proxies and returns their run dirs.
func causesRun(t *testing.T, h testkit.Habits, proxies int, groups []clientGroup) []string {
	t.Helper()
	upURL := testkit.HabitsServer(t, h)
	var dirs []string
	var runs []*running
	for i := range proxies {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("run%d", i))
		r, err := startProxy(&proxyOptions{listen: "127.0.0.1:0", upstream: upURL, out: dir,
			caDir: filepath.Join(dir, "..", "ca"), maxHeaderBytes: 64 << 10, headerTimeout: 30 * time.Second,
			latePong: 5 * time.Second, noKeepalive: 30 * time.Second, maxPerToken: 3, args: []string{"test"}}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		dirs, runs = append(dirs, dir), append(runs, r)
	}
	var wg sync.WaitGroup
	for _, g := range groups {
		url := "ws://" + runs[g.via].srv.Addr().String() + "/chat?g=" + g.name
		for range g.n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(g.after)
				g.c.Run(url)
			}()
		}
	}
	wg.Wait()
	for _, r := range runs {
		for deadline := time.Now().Add(3 * time.Second); r.srv.Stats.Active.Load() > 0 && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		if err := r.stop(); err != nil {
			t.Error(err)
		}
	}
	return dirs
}

// summarize reports on run dirs as `wstap report` does, and logs the text.
func summarize(t *testing.T, dirs ...string) *report.Summary {
	t.Helper()
	var runs []*report.Run
	for _, d := range dirs {
		r, err := report.LoadRun(d)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	s := report.Summarize(runs...)
	var b bytes.Buffer
	if err := s.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", b.String())
	return s
}

// credentialID is how the records name a credential.
func credentialID(v string) string {
	sum := sha256.Sum256([]byte(v))
	return "sha256:" + hex.EncodeToString(sum[:])[:8]
}

// causeOf finds the one cause of a kind; it fails when there is none or more.
func causeOf(t *testing.T, s *report.Summary, kind string) *report.Cause {
	t.Helper()
	var found *report.Cause
	for _, c := range s.Causes {
		if c.Cause == kind {
			if found != nil {
				t.Errorf("two %s causes: %+v and %+v", kind, found, c)
			}
			found = c
		}
	}
	if found == nil {
		t.Fatalf("no %s cause among %s", kind, causesText(s))
	}
	return found
}

func causesText(s *report.Summary) string {
	b, _ := json.Marshal(s.Causes)
	return string(b)
}

// groupOf maps session ids to the group in their target.
func groupOf(t *testing.T, dirs ...string) map[string]string {
	t.Helper()
	g := map[string]string{}
	for _, d := range dirs {
		run, err := report.LoadRun(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range run.Sessions {
			g[r.ID] = r.Target[strings.Index(r.Target, "g=")+2:]
		}
	}
	return g
}

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol*want }

func explanation(s *report.Summary, name string) report.Explanation {
	for _, e := range s.Explanations {
		if e.Name == name {
			return e
		}
	}
	return report.Explanation{}
}

// TestCausesMixed: one token capped at 8 concurrent sessions, an idle
// timeout of 2 s that ignores pongs, a ping timeout of 1.5 s hitting clients
// that answer pings 3 s late, and a session lifetime of 4 s, at once. Each
// cause is found with its sessions and its value within ±10%, its examples
// are its own, nothing is claimed for the others, unexplained ≤ 5%.
func TestCausesMixed(t *testing.T) {
	h := testkit.Habits{Cap: 8, CapCredential: "Bearer capped", CapDelay: 100 * time.Millisecond,
		IdleTimeout: 2 * time.Second, PingEvery: 500 * time.Millisecond, PingTimeout: 1500 * time.Millisecond,
		Lifetime: 4 * time.Second}
	active := testkit.Client{SendEvery: 300 * time.Millisecond, Hold: 3 * time.Second}
	with := func(c testkit.Client, auth string) testkit.Client { c.Authorization = auth; return c }
	groups := []clientGroup{
		{name: "capped", n: 8, c: with(active, "Bearer capped")},
		{name: "overcap", n: 6, after: 500 * time.Millisecond, c: with(active, "Bearer capped")},
		{name: "survivor", n: 12, c: with(active, "Bearer a")},
		{name: "survivor", n: 12, c: with(active, "Bearer b")},
		{name: "silent", n: 10, c: testkit.Client{Authorization: "Bearer a", Hold: 5 * time.Second}},
		{name: "latepong", n: 10, c: testkit.Client{Authorization: "Bearer b", SendEvery: 300 * time.Millisecond,
			PongDelay: 3 * time.Second, Hold: 5 * time.Second}},
		{name: "longlived", n: 10, c: with(testkit.Client{SendEvery: 300 * time.Millisecond, Hold: 6 * time.Second}, "Bearer a")},
		// Other tokens keep opening sessions above any platform-wide level.
		{name: "survivor", n: 8, after: 700 * time.Millisecond, c: with(active, "Bearer b")},
	}
	dirs := causesRun(t, h, 1, groups)
	s := summarize(t, dirs...)
	g := groupOf(t, dirs...)
	want := []struct {
		cause, group string
		n            int
		seconds      float64
	}{
		{report.CauseCap, "overcap", 6, 0},
		{report.CauseIdle, "silent", 10, 2},
		{report.CausePing, "latepong", 10, 1.5},
		{report.CauseLifetime, "longlived", 10, 4},
	}
	for _, w := range want {
		c := causeOf(t, s, w.cause)
		if c.Sessions != w.n {
			t.Errorf("%s: %d sessions, want %d", w.cause, c.Sessions, w.n)
		}
		if w.seconds > 0 && !near(c.Seconds, w.seconds, 0.1) {
			t.Errorf("%s: %.2f s, want %.1f s ±10%%", w.cause, c.Seconds, w.seconds)
		}
		for _, id := range c.Examples {
			if g[id] != w.group {
				t.Errorf("%s: example %s is of group %s, want %s", w.cause, id, g[id], w.group)
			}
		}
	}
	c := causeOf(t, s, report.CauseCap)
	if c.Scope != report.ScopeCredential || c.Credential != credentialID("Bearer capped") || c.Level != 8 {
		t.Errorf("cap: scope %s credential %s level %d, want credential %s level 8", c.Scope, c.Credential, c.Level, credentialID("Bearer capped"))
	}
	unexplained := 0
	for _, c := range s.Causes {
		if c.Cause == report.CauseUnexplained {
			unexplained = c.Sessions
		}
	}
	if unexplained*20 > s.Abnormal || len(s.Causes) > 5 {
		t.Errorf("unexplained %d of %d 1006 sessions; causes %s", unexplained, s.Abnormal, causesText(s))
	}
	for name, verdict := range map[string]string{"idle-timeout": report.Confirmed, "late-pong": report.Confirmed,
		"concurrency-cap": report.Confirmed, "handshake": report.RuledOut, "tls": report.NoData, "rest-throttling": report.NoData} {
		if e := explanation(s, name); e.Verdict != verdict {
			t.Errorf("explanation %s: %s (%s), want %s", name, e.Verdict, e.Detail, verdict)
		}
	}
}

// TestCausesCapScope: a platform-wide cap and a per-token cap, in two runs,
// each with three tokens: each gets its own scope and level.
func TestCausesCapScope(t *testing.T) {
	hold := testkit.Client{SendEvery: 300 * time.Millisecond, Hold: 2500 * time.Millisecond}
	tokens := func(name string, n int, after time.Duration) []clientGroup {
		var out []clientGroup
		for _, tok := range []string{"Bearer x", "Bearer y", "Bearer z"} {
			c := hold
			c.Authorization = tok
			out = append(out, clientGroup{name: name, n: n, after: after, c: c})
		}
		return out
	}
	t.Run("all", func(t *testing.T) {
		dirs := causesRun(t, testkit.Habits{Cap: 15, CapDelay: 100 * time.Millisecond}, 1,
			append(tokens("first", 5, 0), tokens("over", 3, 500*time.Millisecond)...))
		s := summarize(t, dirs...)
		c := causeOf(t, s, report.CauseCap)
		if c.Scope != report.ScopeAll || c.Level != 15 || c.Sessions != 9 || len(s.Causes) != 1 {
			t.Errorf("cap %+v, want scope all, level 15, 9 sessions, alone", *c)
		}
	})
	t.Run("credential", func(t *testing.T) {
		x := testkit.Client{Authorization: "Bearer x", SendEvery: 300 * time.Millisecond, Hold: 2500 * time.Millisecond}
		// y and z: 12 each at once, 5 more each later, never capped; x: 6
		// at once, 5 more later, above its cap of 6.
		groups := append(tokens("first", 12, 0)[1:], tokens("more", 5, 600*time.Millisecond)[1:]...)
		groups = append(groups, clientGroup{name: "first", n: 6, c: x}, clientGroup{name: "over", n: 5, after: 500 * time.Millisecond, c: x})
		dirs := causesRun(t, testkit.Habits{Cap: 6, CapCredential: "Bearer x", CapDelay: 100 * time.Millisecond}, 1, groups)
		s := summarize(t, dirs...)
		c := causeOf(t, s, report.CauseCap)
		if c.Scope != report.ScopeCredential || c.Credential != credentialID("Bearer x") || c.Level != 6 || c.Sessions != 5 || len(s.Causes) != 1 {
			t.Errorf("cap %+v, want scope credential %s, level 6, 5 sessions, alone", *c, credentialID("Bearer x"))
		}
	})
}

// TestCausesCapRefuses: a cap that answers 503 above 12 open sessions: the
// refusals are the cap's, at its level, and no session ended in 1006.
func TestCausesCapRefuses(t *testing.T) {
	hold := testkit.Client{SendEvery: 300 * time.Millisecond, Hold: 2 * time.Second}
	dirs := causesRun(t, testkit.Habits{Cap: 12, CapStatus: 503}, 1, []clientGroup{
		{name: "first", n: 12, c: hold}, {name: "over", n: 7, after: 500 * time.Millisecond, c: hold}})
	s := summarize(t, dirs...)
	c := causeOf(t, s, report.CauseCap)
	if c.Rejected != 7 || c.Sessions != 0 || c.Level != 12 || c.Scope != report.ScopeAll {
		t.Errorf("cap %+v, want 7 refusals, no 1006, level 12, scope all", *c)
	}
	if e := explanation(s, "handshake"); e.Verdict != report.RuledOut {
		t.Errorf("handshake: %s (%s), want ruled-out: the refusals are the cap's", e.Verdict, e.Detail)
	}
}

// TestCausesNone: a run without 1006 names no cause and confirms no
// explanation.
func TestCausesNone(t *testing.T) {
	dirs := causesRun(t, testkit.Habits{IdleTimeout: 2 * time.Second, PingEvery: 500 * time.Millisecond}, 1, []clientGroup{
		{name: "chatty", n: 20, c: testkit.Client{SendEvery: 300 * time.Millisecond, Hold: 2 * time.Second}}})
	s := summarize(t, dirs...)
	if s.Abnormal != 0 || len(s.Causes) != 0 {
		t.Errorf("%d 1006 sessions, causes %s; want none", s.Abnormal, causesText(s))
	}
	if len(s.Explanations) != 7 {
		t.Fatalf("%d explanations, want 7", len(s.Explanations))
	}
	for _, e := range s.Explanations {
		if e.Verdict == report.Confirmed {
			t.Errorf("explanation %d %s confirmed without a 1006: %s", e.N, e.Name, e.Detail)
		}
	}
}

// TestCausesTwoProxies: one token capped at 10 across the platform, its
// sessions spread over two proxies that each see at most half of them; the
// merged report finds the one per-credential cap across both.
func TestCausesTwoProxies(t *testing.T) {
	c := testkit.Client{Authorization: "Bearer shared", SendEvery: 300 * time.Millisecond, Hold: 2500 * time.Millisecond}
	other := testkit.Client{Authorization: "Bearer free", SendEvery: 300 * time.Millisecond, Hold: 2500 * time.Millisecond}
	dirs := causesRun(t, testkit.Habits{Cap: 10, CapCredential: "Bearer shared", CapDelay: 100 * time.Millisecond}, 2, []clientGroup{
		{name: "first", n: 5, via: 0, c: c}, {name: "first", n: 5, via: 1, c: c},
		{name: "over", n: 3, via: 0, after: 500 * time.Millisecond, c: c}, {name: "over", n: 3, via: 1, after: 500 * time.Millisecond, c: c},
		{name: "free", n: 8, via: 0, c: other}, {name: "free", n: 8, via: 1, c: other},
		{name: "free", n: 4, via: 0, after: 600 * time.Millisecond, c: other}, {name: "free", n: 4, via: 1, after: 600 * time.Millisecond, c: other}})
	s := summarize(t, dirs...)
	cap := causeOf(t, s, report.CauseCap)
	if cap.Scope != report.ScopeCredential || cap.Credential != credentialID("Bearer shared") || cap.Level != 10 || cap.Sessions != 6 {
		t.Errorf("cap %+v, want scope credential %s, level 10 across both proxies, 6 sessions", *cap, credentialID("Bearer shared"))
	}
	for i, d := range dirs {
		for _, c := range summarize(t, d).Causes {
			if c.Cause == report.CauseCap && c.Scope == report.ScopeCredential && c.Level == 10 {
				t.Errorf("run %d alone finds the cap of 10 of the whole platform: it saw only half of the sessions", i)
			}
		}
	}
}
