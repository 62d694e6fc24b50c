package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/record"
)

var testT0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

// synthRecord builds a session record as the recorder writes it: session i
// started at start, lasted durMS, ended with verdict at concurrency conc
// after silenceMS without frames.
func synthRecord(i int, start time.Time, durMS float64, verdict record.Verdict, conc int, silenceMS float64) record.Session {
	end := start.Add(time.Duration(durMS * float64(time.Millisecond)))
	r := record.Session{
		ID:         fmt.Sprintf("s%05d", i),
		ClientAddr: fmt.Sprintf("127.0.0.1:%d", 40000+i),
		Target:     "wss://chat.example.com:443/socket?token=REDACTED",
		Start:      start,
		DurationMS: durMS,
		Handshake:  record.Handshake{Status: 101, Subprotocol: "chat", LatencyMS: 12},
		Keepalive: record.Keepalive{ClientPings: int64(durMS / 20000), UpstreamPings: int64(durMS / 30000),
			SilenceBeforeEnd: silenceMS, ClientSilenceBeforeEndMS: silenceMS, MaxSilenceMS: silenceMS},
		Verdict:         verdict,
		ConcurrentAtEnd: conc,
		End:             record.End{At: end, First: record.SideClient, How: record.HowCloseHandshake},
	}
	if r.Keepalive.ClientPings >= 2 {
		r.Keepalive.ClientPingIntervalMS = &record.Interval{Min: 19800, P50: 20000, Max: 20300}
		r.Keepalive.UpstreamPongRTTMS = &record.RTT{P50: 3, Max: 9}
	}
	code := 1000
	cc := &record.CloseFrame{Code: 1000, At: end}
	switch verdict {
	case record.VerdictClean:
		r.Close = record.Closes{Client: cc, Upstream: cc}
	case record.VerdictClosedUpstream:
		r.Close = record.Closes{Upstream: &record.CloseFrame{Code: 1001, Reason: "idle", At: end}}
		r.End.First, code = record.SideUpstream, 1001
	case record.VerdictAbnormalUp:
		r.End.First, r.End.How, code, r.Abnormal = record.SideUpstream, record.HowEOF, 1006, true
	case record.VerdictAbnormalClient:
		r.End.First, r.End.How, code, r.Abnormal = record.SideClient, record.HowReset, 1006, true
	case record.VerdictRejected:
		r.Handshake.Status, r.End.How, r.End.First = 429, record.HowHandshakeRejects, record.SideUpstream
		r.Keepalive = record.Keepalive{}
		return r
	case record.VerdictTLSClient:
		r.Handshake.Status, r.End.How = 0, record.HowTLSError
		r.TLS.Client = &record.TLSLeg{Version: "TLS 1.3", Error: "remote error: tls: bad certificate", Alert: "bad_certificate"}
		r.Keepalive = record.Keepalive{}
		return r
	}
	r.ClientCloseCode, r.UpstreamCloseCode = &code, &code
	return r
}

// testRun is the content of a synthetic run dir.
type testRun struct {
	recs     []record.Session
	events   []map[string]any
	manifest map[string]any
	garbage  int // unparsable lines appended to sessions.jsonl
}

// write lays the run out in dir as the recorder does.
func (tr testRun) write(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var sb, eb bytes.Buffer
	for _, r := range tr.recs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		sb.Write(append(b, '\n'))
	}
	for range tr.garbage {
		sb.WriteString("{\"id\": \"torn\n")
	}
	for _, e := range tr.events {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		eb.Write(append(b, '\n'))
	}
	files := map[string][]byte{capture.SessionsFile: sb.Bytes(), capture.EventsFile: eb.Bytes()}
	if tr.manifest != nil {
		b, err := json.Marshal(tr.manifest)
		if err != nil {
			t.Fatal(err)
		}
		files[capture.RunFile] = b
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// ev builds an events.jsonl line.
func ev(at time.Time, session, event string, kv ...any) map[string]any {
	m := map[string]any{"time": at.Format(time.RFC3339Nano), "level": "info", "session": session, "event": event}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// mixedRun is a realistic small run: verdicts of every kind, pings, closes,
// non-WebSocket requests with 429s, TLS failures and findings.
func mixedRun(seed uint64, start time.Time) testRun {
	rng := rand.New(rand.NewPCG(seed, 7))
	verdicts := []record.Verdict{record.VerdictClean, record.VerdictClean, record.VerdictClean, record.VerdictAbnormalUp, record.VerdictAbnormalUp,
		record.VerdictClosedUpstream, record.VerdictAbnormalClient, record.VerdictRejected, record.VerdictTLSClient}
	var tr testRun
	for i := range 40 + rng.IntN(40) {
		st := start.Add(time.Duration(i) * 500 * time.Millisecond)
		v := verdicts[rng.IntN(len(verdicts))]
		r := synthRecord(int(seed)*1000+i, st, 30000+60000*rng.Float64(), v, 1+rng.IntN(50), 1000+60000*rng.Float64())
		if rng.IntN(4) == 0 {
			r.Findings = append(r.Findings, record.Finding{Rule: "subprotocol-none-offered", Severity: record.SevInfo, Detail: "no Sec-WebSocket-Protocol"})
		}
		if v == record.VerdictAbnormalUp && rng.IntN(2) == 0 {
			r.Findings = append(r.Findings, record.Finding{Rule: "no-keepalive", Severity: record.SevWarn, Detail: "no ping or data from the client in its last 60 s"})
		}
		tr.recs = append(tr.recs, r)
		tr.events = append(tr.events, ev(st.Add(12*time.Millisecond), r.ID, "handshake", "status", r.Handshake.Status, "latency_ms", 12))
		for p := 1; p <= int(r.Keepalive.ClientPings); p++ {
			at := st.Add(time.Duration(p) * 20 * time.Second)
			tr.events = append(tr.events, ev(at, r.ID, "ping", "dir", "client_to_upstream", "len", 4),
				ev(at.Add(3*time.Millisecond), r.ID, "pong", "dir", "upstream_to_client", "len", 4, "rtt_ms", 3))
		}
		tr.events = append(tr.events, ev(endTime(&r), r.ID, "end", "verdict", v, "first", r.End.First, "how", r.End.How))
	}
	for i := range 30 + rng.IntN(20) {
		status := []int{200, 200, 201, 429, 503}[rng.IntN(5)]
		tr.events = append(tr.events, ev(start.Add(time.Duration(i)*time.Second), "", "http",
			"method", "POST", "url", "https://chat.example.com/api/login", "status", status, "latency_ms", 40))
	}
	tr.events = append(tr.events, ev(start, "", "http", "method", "CONNECT", "url", "update.example.com:443", "status", 403,
		"reason", "target update.example.com:443 is not in wstap's --allow list", "by", "wstap", "client", "127.0.0.1:5001"))
	tr.events = append(tr.events, ev(start, "", "rejected", "reason", "header-timeout", "client", "127.0.0.1:5000"),
		ev(start, "", "tls", "leg", "upstream", "error", "remote error: tls: handshake failure", "alert", "handshake_failure"))
	tr.manifest = map[string]any{"version": "test", "args": []string{"proxy"}, "start": start, "end": start.Add(3 * time.Minute),
		"host": "engine", "mode": "reverse", "upstream": "wss://chat.example.com",
		"counters": map[string]any{"sessions": len(tr.recs), "events_dropped": 3 + seed, "packets_dropped": 1, "accept_errors": 0}}
	return tr
}

// TestReportMerge: merging two run dirs gives counts equal to the sum of the parts.
func TestReportMerge(t *testing.T) {
	root := t.TempDir()
	ra := mixedRun(1, testT0)
	ra.garbage = 2
	a := loadTestRun(t, ra.write(t, filepath.Join(root, "a")))
	b := loadTestRun(t, mixedRun(2, testT0.Add(10*time.Second)).write(t, filepath.Join(root, "b")))
	sa, sb, sm := Summarize(a), Summarize(b), Summarize(a, b)

	if sm.Sessions != sa.Sessions+sb.Sessions || sm.Sessions == 0 {
		t.Errorf("sessions %d, want %d + %d", sm.Sessions, sa.Sessions, sb.Sessions)
	}
	for i, vc := range sm.Verdicts {
		if want := sa.Verdicts[i].Count + sb.Verdicts[i].Count; vc.Count != want {
			t.Errorf("verdict %s = %d, want %d", vc.Verdict, vc.Count, want)
		}
	}
	checks := []struct {
		name    string
		m, a, b int
	}{
		{"abnormal", sm.Abnormal, sa.Abnormal, sb.Abnormal},
		{"upgraded", sm.Upgraded, sa.Upgraded, sb.Upgraded},
		{"dropped by upstream", sm.DroppedBy[string(record.SideUpstream)], sa.DroppedBy[string(record.SideUpstream)], sb.DroppedBy[string(record.SideUpstream)]},
		{"http requests", sm.HTTP.Requests, sa.HTTP.Requests, sb.HTTP.Requests},
		{"429", sm.HTTP.Throttled, sa.HTTP.Throttled, sb.HTTP.Throttled},
		{"rejected", sm.Rejected["header-timeout"], sa.Rejected["header-timeout"], sb.Rejected["header-timeout"]},
		{"refused by forward mode", sm.Rejected["forward-403"], sa.Rejected["forward-403"], sb.Rejected["forward-403"]},
		{"events dropped", int(sm.Counters.EventsDropped), int(sa.Counters.EventsDropped), int(sb.Counters.EventsDropped)},
		{"no-keepalive", sm.Keepalive.NoKeepalive, sa.Keepalive.NoKeepalive, sb.Keepalive.NoKeepalive},
		{"client pings", int(sm.Keepalive.ClientToUpstream.Pings), int(sa.Keepalive.ClientToUpstream.Pings), int(sb.Keepalive.ClientToUpstream.Pings)},
		{"findings", ruleTotal(sm), ruleTotal(sa), ruleTotal(sb)},
		{"tls failures", tlsTotal(sm), tlsTotal(sa), tlsTotal(sb)},
		{"problems", len(sm.Problems), len(sa.Problems), len(sb.Problems)},
	}
	for _, c := range checks {
		if c.m != c.a+c.b {
			t.Errorf("%s = %d, want %d + %d", c.name, c.m, c.a, c.b)
		}
	}
	if sa.Abnormal == 0 || sa.HTTP.Throttled == 0 || tlsTotal(sa) == 0 || ruleTotal(sa) == 0 {
		t.Fatalf("synthetic run too thin: %+v", sa)
	}
	// The 403 wstap answered itself (forward mode, --allow) is a refusal of
	// wstap's, not a status of the platform's REST API.
	for _, st := range sa.HTTP.ByStatus {
		if st.Status == 403 {
			t.Errorf("wstap's own 403 counted among the platform's statuses: %+v", sa.HTTP.ByStatus)
		}
	}
	if sa.Rejected["forward-403"] != 1 {
		t.Errorf("refusals %v, want forward-403: 1", sa.Rejected)
	}
	if len(sa.Problems) != 1 || !strings.Contains(sa.Problems[0], "2 lines that do not parse left out") ||
		!strings.Contains(sa.Problems[0], "sessions.jsonl:63: ") {
		t.Errorf("problems = %q, want the 2 torn lines of sessions.jsonl", sa.Problems)
	}
	if !sm.Start.Equal(sa.Start) || !sm.End.Equal(maxTime(sa.End, sb.End)) {
		t.Errorf("merged span %v–%v, want %v–%v", sm.Start, sm.End, sa.Start, maxTime(sa.End, sb.End))
	}
	if sm.Concurrency.Peak < max(sa.Concurrency.Peak, sb.Concurrency.Peak) {
		t.Errorf("merged peak %d below the parts' %d, %d", sm.Concurrency.Peak, sa.Concurrency.Peak, sb.Concurrency.Peak)
	}
}

func ruleTotal(s *Summary) (n int) {
	for _, r := range s.Findings {
		n += r.Count
	}
	return n
}

func tlsTotal(s *Summary) (n int) {
	for _, r := range s.TLSFailures {
		n += r.Count
	}
	return n
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func loadTestRun(t *testing.T, dir string) *Run {
	t.Helper()
	r, err := LoadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// cappedRuns simulates a server that resets, 200 ms after its 101, every
// session that opens while capLevel sessions are open; the sessions are
// spread over nRuns proxies (round robin), each of which records only its own
// concurrency at open and at end.
func cappedRuns(capLevel, nRuns int) []testRun {
	rng := rand.New(rand.NewPCG(150, 150))
	const latency = 12 * time.Millisecond // synthRecord's handshake latency
	type span struct {
		start, end time.Time
		dropped    bool
	}
	var spans []span
	var liveEnds []time.Time // ends of the sessions the cap let live
	for i := range 900 {     // arrivals every 100 ms, 10–40 s long: a ramp to ~250 wanted
		st := testT0.Add(time.Duration(i) * 100 * time.Millisecond)
		opened := st.Add(latency)
		liveEnds = slices.DeleteFunc(liveEnds, func(e time.Time) bool { return !e.After(opened) })
		sp := span{start: st, end: opened.Add(time.Duration(10000+30000*rng.Float64()) * time.Millisecond)}
		if len(liveEnds) >= capLevel {
			sp.end, sp.dropped = opened.Add(200*time.Millisecond), true
		} else {
			liveEnds = append(liveEnds, sp.end)
		}
		spans = append(spans, sp)
	}
	// open(t, run, incl) counts the upgraded sessions of a run open at t
	// (opened at or before t; ended after t, or at t when incl).
	open := func(t time.Time, run int, incl bool) int {
		n := 0
		for i, s := range spans {
			if i%nRuns == run && !s.start.Add(latency).After(t) && (s.end.After(t) || incl && s.end.Equal(t)) {
				n++
			}
		}
		return n
	}
	runs := make([]testRun, nRuns)
	for i, s := range spans {
		v, silence := record.VerdictClean, 500.0
		if s.dropped {
			v, silence = record.VerdictAbnormalUp, 200
		}
		dur := float64(s.end.Sub(s.start).Milliseconds())
		r := synthRecord(i, s.start, dur, v, open(s.end, i%nRuns, true), silence)
		r.ConcurrentAtOpen = open(s.start.Add(latency), i%nRuns, false)
		if s.dropped {
			r.End.How = record.HowReset
		}
		runs[i%nRuns].recs = append(runs[i%nRuns].recs, r)
	}
	return runs
}

// TestReportCapAtOpen: a server resetting the sessions that open above 150
// concurrent is reported as a cap of exactly 150 on every session (scope
// all), from one proxy and merged from three proxies that each saw a third
// of the sessions, with every 1006 attributed to it and no timer claimed.
func TestReportCapAtOpen(t *testing.T) {
	for _, nRuns := range []int{1, 3} {
		t.Run(fmt.Sprintf("runs=%d", nRuns), func(t *testing.T) {
			var runs []*Run
			for i, tr := range cappedRuns(150, nRuns) {
				runs = append(runs, loadTestRun(t, tr.write(t, filepath.Join(t.TempDir(), fmt.Sprint(i)))))
			}
			s := Summarize(runs...)
			if len(s.Causes) != 1 {
				t.Fatalf("causes %+v, want one concurrency-cap", s.Causes)
			}
			c := s.Causes[0]
			if c.Cause != CauseCap || c.Scope != ScopeAll || c.Level != 150 || c.Sessions != s.Abnormal || s.Abnormal < 50 {
				t.Errorf("cause %+v with %d abnormal sessions, want concurrency-cap all 150 holding all", c, s.Abnormal)
			}
			var text bytes.Buffer
			if err := s.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"concurrency-cap (scope all, level 150)", "a cap of 150 concurrent sessions",
				"5. concurrency-cap  confirmed", "1. idle-timeout     ruled-out"} {
				if !strings.Contains(text.String(), want) {
					t.Errorf("text lacks %q:\n%s", want, text.String())
				}
			}
			t.Logf("summary:\n%s", text.String())
		})
	}
}

// TestReportLoad: missing files are tolerated and listed; a missing dir or a
// dir without run files is an error naming it.
func TestReportLoad(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, capture.SessionsFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := loadTestRun(t, dir)
	if len(r.Problems) != 2 {
		t.Errorf("problems = %q, want events.jsonl and run.json missing", r.Problems)
	}
	// zerolog times as RFC 3339 or Unix milliseconds; a torn line is counted.
	events := `{"time":"2026-11-28T10:00:00.5Z","level":"info","event":"http","status":429}
{"time":1795860000500,"level":"info","event":"http","status":429}
{"time":"yesterday","level":"info","event":"http","status":200}
{"time":"2026-11-28T10:00:01Z","lev`
	if err := os.WriteFile(filepath.Join(dir, capture.EventsFile), []byte(events), 0o644); err != nil {
		t.Fatal(err)
	}
	r = loadTestRun(t, dir)
	if r.HTTPStatus[429] != 2 || r.HTTPStatus[200] != 0 {
		t.Errorf("http statuses = %v, want two 429s", r.HTTPStatus)
	}
	if len(r.Problems) != 2 || !strings.Contains(r.Problems[1], "2 lines that do not parse left out (") ||
		!strings.Contains(r.Problems[1], "events.jsonl:3: ") {
		t.Errorf("problems = %q, want run.json missing and 2 bad event lines", r.Problems)
	}
	for _, bad := range []string{filepath.Join(dir, "nope"), t.TempDir()} {
		if _, err := LoadRun(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("LoadRun(%s) = %v, want an error naming it", bad, err)
		}
	}
}

// tlsRun is a ramp of TLS sessions on both legs, an arrival every 100 ms
// lasting 10–40 s; while more than failAbove other sessions are open, a
// third of the client handshakes fail with unknown_ca (failAbove < 0: none
// fail). It returns the run, the number of client failures and of resumed
// client handshakes.
func tlsRun(failAbove int) (tr testRun, failures, resumed int) {
	rng := rand.New(rand.NewPCG(44, 4))
	var ends []time.Time // of the upgraded sessions
	for i := range 900 {
		st := testT0.Add(time.Duration(i) * 100 * time.Millisecond)
		hsMS := 5 + 20*rng.Float64()
		at := st.Add(time.Duration(hsMS * float64(time.Millisecond)))
		open := 0
		for _, e := range ends {
			if !e.Before(at) {
				open++
			}
		}
		if failAbove >= 0 && open > failAbove && rng.IntN(3) == 0 {
			r := synthRecord(i, st, hsMS, record.VerdictTLSClient, open, 0)
			r.TLS.Client = &record.TLSLeg{Version: "TLS 1.3", SNI: "chat.example.com", HandshakeMS: hsMS,
				Error: "remote error: tls: unknown certificate authority", Alert: "unknown_ca"}
			tr.recs = append(tr.recs, r)
			tr.events = append(tr.events, ev(at, r.ID, "tls", "leg", "client", "error", r.TLS.Client.Error, "alert", "unknown_ca"))
			failures++
			continue
		}
		dur := 10000 + 30000*rng.Float64()
		r := synthRecord(i, st, dur, record.VerdictClean, open+1, 500)
		r.TLS.Client = &record.TLSLeg{Version: "TLS 1.3", Cipher: "TLS_AES_128_GCM_SHA256", SNI: "chat.example.com",
			HandshakeMS: hsMS, Resumed: i%4 == 0, End: "close_notify"}
		r.TLS.Upstream = &record.TLSLeg{Version: "TLS 1.2", Cipher: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
			SNI: "chat.example.com", HandshakeMS: 2 * hsMS, End: "close_notify"}
		if i%4 == 0 {
			resumed++
		}
		ends = append(ends, endTime(&r))
		tr.recs = append(tr.recs, r)
	}
	return tr, failures, resumed
}

// TestReportTLSUnderConcurrency: client handshakes that fail only while
// more than 150 sessions are open are reported with that level, by band and
// by time, and in the one-sentence conclusion.
func TestReportTLSUnderConcurrency(t *testing.T) {
	tr, failures, resumed := tlsRun(150)
	s := Summarize(loadTestRun(t, tr.write(t, filepath.Join(t.TempDir(), "run"))))
	c, u := s.TLS.Client, s.TLS.Upstream
	if failures < 20 || c.Failures != failures || c.Handshakes != len(tr.recs) {
		t.Fatalf("client: %d of %d failed, want %d of %d", c.Failures, c.Handshakes, failures, len(tr.recs))
	}
	if u.Failures != 0 || u.Handshakes != len(tr.recs)-failures {
		t.Errorf("upstream: %d of %d failed, want 0 of %d", u.Failures, u.Handshakes, len(tr.recs)-failures)
	}
	if len(c.Causes) != 1 || c.Causes[0] != (tlsCause{"unknown_ca", failures}) {
		t.Errorf("client causes %+v", c.Causes)
	}
	if c.Resumed != resumed || c.HandshakeMS.N != len(tr.recs)-failures || c.HandshakeMS.P50 < 5 || c.HandshakeMS.Max > 25 ||
		u.HandshakeMS.P90 < c.HandshakeMS.P90 {
		t.Errorf("resumed %d (want %d), client handshake %+v, upstream %+v", c.Resumed, resumed, c.HandshakeMS, u.HandshakeMS)
	}
	th := c.Threshold
	if th == nil || th.Level < 140 || th.Level > 165 || th.BelowDrops != 0 || th.AboveDrops != failures {
		t.Fatalf("client threshold %+v, want all %d failures above ~150", th, failures)
	}
	if c.MinFailureConc <= 150 {
		t.Errorf("first failure at %d open, want above 150", c.MinFailureConc)
	}
	want := fmt.Sprintf("TLS: %s of %s client handshakes failed (unknown_ca %d), all above %s open sessions",
		groupInt(failures), groupInt(c.Handshakes), failures, groupInt(th.Level))
	if !strings.HasPrefix(s.TLS.Text, want) || !strings.HasSuffix(s.TLS.Text, "; no renegotiation") ||
		!strings.Contains(s.TLS.Text, fmt.Sprintf("0 of %s upstream handshakes failed", groupInt(u.Handshakes))) {
		t.Errorf("sentence %q, want it to start %q", s.TLS.Text, want)
	}
	// Bands: no failure in a band below 150, all of them above; the sums
	// of the bands and of the time buckets are the totals.
	sum := func(bs []tlsBand) (hs, fails int) {
		for _, b := range bs {
			hs += b.ClientHandshakes
			fails += b.ClientFailures
		}
		return hs, fails
	}
	// A 90 s run: six bands of 15 s, none empty.
	if len(s.TLS.ByConcurrency) < 3 || len(s.TLS.ByTime) != 6 || s.TLS.ByTime[0].To.Sub(s.TLS.ByTime[0].From) != 15*time.Second {
		t.Fatalf("bands %+v, time %+v; want 6 time bands of 15 s", s.TLS.ByConcurrency, s.TLS.ByTime)
	}
	for _, b := range append(s.TLS.ByConcurrency, s.TLS.ByTime...) {
		if b.ClientHandshakes+b.UpstreamHandshakes+b.Renegotiations == 0 {
			t.Errorf("empty band %s", b.Label)
		}
	}
	for _, b := range s.TLS.ByConcurrency {
		if b.High < 150 && b.ClientFailures != 0 {
			t.Errorf("band %s: %d failures", b.Label, b.ClientFailures)
		}
	}
	for _, bs := range [][]tlsBand{s.TLS.ByConcurrency, s.TLS.ByTime} {
		if hs, fails := sum(bs); hs != c.Handshakes || fails != failures {
			t.Errorf("bands sum to %d failures of %d handshakes, want %d of %d", fails, hs, failures, c.Handshakes)
		}
	}
	if first := s.TLS.ByTime[0]; first.ClientFailures != 0 || first.ClientHandshakes == 0 {
		t.Errorf("first tenth of the ramp %+v: want handshakes and no failure", first)
	}

	var text, page bytes.Buffer
	if err := s.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), s.TLS.Text+"\n") || !strings.Contains(text.String(), "failed: unknown_ca") {
		t.Errorf("text lacks the TLS section:\n%s", text.String())
	}
	for _, frag := range []string{`id="tls-text">` + s.TLS.Text + ".<",
		fmt.Sprintf(`data-tls-failures="client">%d<`, failures), `id="tls-concurrency"`, `id="tls-time"`} {
		if !strings.Contains(page.String(), frag) {
			t.Errorf("page lacks %q", frag)
		}
	}
	if strings.Contains(page.String(), "<script") {
		t.Error("page has a script")
	}
	t.Logf("summary:\n%s", text.String())
}

// TestReportTLSNone: no failure gives the "0 failures" sentence;
// renegotiations are counted by leg and outcome, from the events and, when
// events were dropped, from the records; the TLS ends of 1006 sessions are
// counted per leg.
func TestReportTLSNone(t *testing.T) {
	tr, failures, _ := tlsRun(-1)
	if failures != 0 {
		t.Fatal(failures)
	}
	n := len(tr.recs)
	s := Summarize(loadTestRun(t, tr.write(t, filepath.Join(t.TempDir(), "none"))))
	want := fmt.Sprintf("TLS: 0 failures in %s client handshakes and %s upstream handshakes; no renegotiation", groupInt(n), groupInt(n))
	if s.TLS.Text != want {
		t.Errorf("sentence %q, want %q", s.TLS.Text, want)
	}
	if s.TLS.Client.Threshold != nil || len(s.TLS.Client.Causes) != 0 || len(s.TLS.Renegotiations) != 0 {
		t.Errorf("client %+v, renegotiations %+v", s.TLS.Client, s.TLS.Renegotiations)
	}

	// Three upstream renegotiations accepted (one session logged only one
	// of its two: the record counts two), one client renegotiation refused;
	// two sessions end in 1006, their upstream TLS by a bare TCP FIN.
	up := func(i, k int) {
		r := &tr.recs[i]
		r.TLS.Upstream.Renegotiations = k
		tr.events = append(tr.events, ev(r.Start.Add(time.Second), r.ID, "tls-renegotiation", "leg", "upstream", "outcome", "accepted"))
	}
	up(10, 1)
	up(20, 2)
	r := &tr.recs[30]
	r.TLS.Client.Renegotiations = 1
	tr.events = append(tr.events, ev(r.Start.Add(time.Second), r.ID, "tls-renegotiation", "leg", "client", "outcome", "refused"))
	// An upstream renegotiation that failed, in a session that ended in 1006.
	r = &tr.recs[40]
	r.TLS.Upstream.Renegotiations, r.TLS.Upstream.RenegotiationsFailed = 1, 1
	tr.events = append(tr.events, ev(r.Start.Add(time.Second), r.ID, "tls-renegotiation", "leg", "upstream", "outcome", "failed"))
	for _, i := range []int{20, 40} {
		r := &tr.recs[i]
		r.Abnormal, r.Verdict = true, record.VerdictAbnormalUp
		r.TLS.Upstream.End = "tcp"
	}
	s = Summarize(loadTestRun(t, tr.write(t, filepath.Join(t.TempDir(), "reneg"))))
	wantReneg := []tlsRenegotiationCount{{"client", "refused", 1}, {"upstream", "accepted", 3}, {"upstream", "failed", 1}}
	if !slices.Equal(s.TLS.Renegotiations, wantReneg) || s.TLS.RenegotiatedSessions != 4 || s.TLS.RenegotiatedAbnormal != 2 {
		t.Errorf("renegotiations %+v in %d sessions (%d abnormal), want %+v in 4 (2)", s.TLS.Renegotiations,
			s.TLS.RenegotiatedSessions, s.TLS.RenegotiatedAbnormal, wantReneg)
	}
	if s.TLS.RenegotiationFailed != 2 || s.TLS.RenegotiationFailedAbnormal != 1 ||
		s.TLS.RenegotiationFailedBy["client"] != 1 || s.TLS.RenegotiationFailedBy["upstream"] != 1 {
		t.Errorf("failed renegotiations in %d sessions %v, %d of them 1006; want 2 (client 1, upstream 1), 1",
			s.TLS.RenegotiationFailed, s.TLS.RenegotiationFailedBy, s.TLS.RenegotiationFailedAbnormal)
	}
	total := 0
	for _, b := range s.TLS.ByConcurrency {
		total += b.Renegotiations
	}
	if total != 5 {
		t.Errorf("renegotiations by concurrency sum to %d, want 5", total)
	}
	if got := s.TLS.Upstream.AbnormalEnds; len(got) != 1 || got["tcp"] != 2 {
		t.Errorf("upstream TLS ends of the 1006 sessions %v, want tcp 2", got)
	}
	if got := s.TLS.Client.AbnormalEnds; len(got) != 1 || got["close_notify"] != 2 {
		t.Errorf("client TLS ends of the 1006 sessions %v, want close_notify 2", got)
	}
	want = fmt.Sprintf("TLS: 0 failures in %s client handshakes and %s upstream handshakes; 5 renegotiations (client refused 1, upstream accepted 3, upstream failed 1) in 4 sessions, 2 of which ended in 1006; 2 sessions with a failed or refused renegotiation (client 1, upstream 1), 1 of them ended in 1006",
		groupInt(n), groupInt(n))
	if s.TLS.Text != want {
		t.Errorf("sentence %q, want %q", s.TLS.Text, want)
	}
	// Explanation 4 is confirmed by the failed renegotiation of a 1006 session.
	if e := s.Explanations[3]; e.Name != "tls" || e.Verdict != Confirmed ||
		!strings.Contains(e.Detail, "2 sessions with a failed or refused renegotiation (client 1, upstream 1), 1 of them among the 2 1006 sessions") {
		t.Errorf("explanation %+v, want tls confirmed by the failed renegotiation", e)
	}
	var page bytes.Buffer
	if err := s.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), `id="tls-reneg-failed">2<`) {
		t.Error("page lacks the sessions with a failed renegotiation")
	}
	if !strings.Contains(page.String(), `data-reneg="upstream-accepted">3<`) {
		t.Error("page lacks the renegotiation count")
	}
}

// TestReportTLSRenegotiationFailedRecordOnly: with the "tls-renegotiation"
// events dropped, the records alone say which sessions had a renegotiation
// fail (upstream: renegotiations_failed) or refused (client: any), and the
// report still counts them (read as the records are streamed, settled once
// the events are read).
func TestReportTLSRenegotiationFailedRecordOnly(t *testing.T) {
	tr, _, _ := tlsRun(-1)
	tr.recs[5].TLS.Upstream.Renegotiations, tr.recs[5].TLS.Upstream.RenegotiationsFailed = 2, 1
	tr.recs[6].TLS.Upstream.Renegotiations = 1 // accepted: not a failure
	tr.recs[7].TLS.Client.Renegotiations = 1
	tr.recs[7].Abnormal, tr.recs[7].Verdict = true, record.VerdictAbnormalUp
	s := Summarize(loadTestRun(t, tr.write(t, filepath.Join(t.TempDir(), "recordonly"))))
	if s.TLS.RenegotiationFailed != 2 || s.TLS.RenegotiationFailedAbnormal != 1 ||
		s.TLS.RenegotiationFailedBy["client"] != 1 || s.TLS.RenegotiationFailedBy["upstream"] != 1 {
		t.Errorf("failed renegotiations in %d sessions %v, %d of them 1006; want 2 (client 1, upstream 1), 1",
			s.TLS.RenegotiationFailed, s.TLS.RenegotiationFailedBy, s.TLS.RenegotiationFailedAbnormal)
	}
	if s.TLS.RenegotiatedSessions != 3 {
		t.Errorf("%d sessions renegotiated, want 3", s.TLS.RenegotiatedSessions)
	}
}
