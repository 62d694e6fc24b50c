package report

import (
	"bufio"
	"bytes"
	"container/heap"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/record"
)

// The million-session report benchmark (issue 15): 10 run dirs of 100,000
// sessions each, merged. It writes about 3.5 GB once and takes a minute or
// more, so it runs only when WSTAP_BENCH_MILLION=1; WSTAP_BENCH_DIR keeps the
// run dirs there between runs (written when missing).
const (
	millionRuns    = 10
	millionPerRun  = 100_000
	millionCap     = 1_700            // the platform drops sessions opening above this
	millionIdle    = 60 * time.Second // and sessions silent this long
	millionSpacing = 36 * time.Millisecond
)

// BenchmarkReportMillion: LoadRuns of every run dir, Summarize, WriteText and
// WriteHTML over 1,000,000 sessions under wstap report's memory limit;
// reports seconds and peak RSS.
func BenchmarkReportMillion(b *testing.B) {
	if os.Getenv("WSTAP_BENCH_MILLION") != "1" {
		b.Skip("writes 1,000,000 sessions (3.5 GB) and takes minutes: set WSTAP_BENCH_MILLION=1 to run it")
	}
	dirs := millionRunDirs(b)
	if os.Getenv("GOMEMLIMIT") == "" { // as wstap report does
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(MemoryLimit))
	}
	b.ReportAllocs()
	var secs, peak float64
	for b.Loop() {
		runtime.GC()
		debug.FreeOSMemory()
		resetPeakRSS(b)
		start := time.Now()
		runs, err := LoadRuns(dirs, nil)
		if err != nil {
			b.Fatal(err)
		}
		s := Summarize(runs...)
		if err := s.WriteText(io.Discard); err != nil {
			b.Fatal(err)
		}
		if err := s.WriteHTML(io.Discard); err != nil {
			b.Fatal(err)
		}
		secs = time.Since(start).Seconds()
		peak = float64(peakRSS(b)) / (1 << 20)
		if s.Sessions != millionRuns*millionPerRun || s.Abnormal == 0 {
			b.Fatalf("%d sessions, %d abnormal; want %d and some", s.Sessions, s.Abnormal, millionRuns*millionPerRun)
		}
	}
	b.ReportMetric(secs, "s/report")
	b.ReportMetric(peak, "peak-RSS-MiB")
}

// resetPeakRSS resets VmHWM (proc(5), /proc/pid/clear_refs "5").
func resetPeakRSS(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("cannot reset the peak RSS (%v): it includes writing the run dirs", err)
	}
}

// peakRSS reads VmHWM from /proc/self/status, in bytes.
func peakRSS(b *testing.B) int64 {
	st, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(st), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// millionRunDirs writes the run dirs (or finds them in WSTAP_BENCH_DIR).
func millionRunDirs(b *testing.B) []string {
	root := os.Getenv("WSTAP_BENCH_DIR")
	if root == "" {
		root = b.TempDir()
	}
	var dirs []string
	for i := range millionRuns {
		dir := filepath.Join(root, fmt.Sprintf("run-%02d", i))
		dirs = append(dirs, dir)
		if _, err := os.Stat(filepath.Join(dir, capture.RunFile)); err == nil {
			continue // written by an earlier run (run.json comes last)
		}
		if err := writeMillionRun(dir, i); err != nil {
			b.Fatal(err)
		}
	}
	return dirs
}

// millionT0 is when the first run starts; run i starts i seconds later.
var millionT0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// writeMillionRun writes one run dir: sessions.jsonl, events.jsonl, run.json.
func writeMillionRun(dir string, run int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	recs := millionSessions(run)
	sf, err := os.Create(filepath.Join(dir, capture.SessionsFile))
	if err != nil {
		return err
	}
	defer sf.Close()
	ef, err := os.Create(filepath.Join(dir, capture.EventsFile))
	if err != nil {
		return err
	}
	defer ef.Close()
	sw, ew := bufio.NewWriterSize(sf, 1<<20), bufio.NewWriterSize(ef, 1<<20)
	for i := range recs {
		line, err := json.Marshal(&recs[i])
		if err != nil {
			return err
		}
		sw.Write(append(line, '\n'))
		writeMillionEvents(ew, &recs[i])
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	if err := ew.Flush(); err != nil {
		return err
	}
	return writeMillionManifest(dir, run, recs)
}

func writeMillionManifest(dir string, run int, recs []record.Session) error {
	end := endTime(&recs[len(recs)-1])
	m := capture.RunInfo{Version: "bench", Start: millionT0.Add(time.Duration(run) * time.Second), End: &end,
		Host: fmt.Sprintf("engine-%d", run), Mode: "reverse", Upstream: "wss://chat.example:443"}
	m.Counters.Sessions = int64(len(recs))
	for i := range recs {
		if recs[i].Abnormal {
			m.Counters.Abnormal++
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, capture.RunFile), b, 0o644)
}

// endHeap holds the end times of the open sessions, earliest first.
type endHeap []time.Time

func (h endHeap) Len() int           { return len(h) }
func (h endHeap) Less(i, j int) bool { return h[i].Before(h[j]) }
func (h endHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *endHeap) Push(x any)        { *h = append(*h, x.(time.Time)) }
func (h *endHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// millionSessions simulates one run: a session every 36 ms; of every ten,
// seven ping and close cleanly after 30–120 s, two stay silent and the
// platform drops them after 60 s; a session opening above the cap is reset
// 1.5 s after its 101; one in fifty is refused with 429.
func millionSessions(run int) []record.Session {
	recs := make([]record.Session, millionPerRun)
	var open endHeap
	for i := range recs {
		start := millionT0.Add(time.Duration(run)*time.Second + time.Duration(i)*millionSpacing)
		for open.Len() > 0 && !open[0].After(start) {
			heap.Pop(&open)
		}
		kind := "clean"
		switch {
		case i%50 == 7:
			kind = "rejected"
		case open.Len()+1 > millionCap:
			kind = "cap"
		case i%10 >= 8:
			kind = "idle"
		}
		r := millionRecord(run, i, start, kind, open.Len()+1)
		if kind != "rejected" {
			heap.Push(&open, endTime(&r))
		}
		recs[i] = r
	}
	setConcurrentAtEnd(recs)
	return recs
}

// millionRecord is one session record of the given kind.
func millionRecord(run, i int, start time.Time, kind string, conc int) record.Session {
	cred := fmt.Sprintf("sha256:%08x", (run*millionPerRun+i)%997)
	r := record.Session{ID: fmt.Sprintf("r%d-s%d", run, i), ClientAddr: fmt.Sprintf("10.0.%d.%d:%d", run, i%250, 20000+i%40000),
		UpstreamAddr: "203.0.113.7:443", Target: fmt.Sprintf("wss://chat.example/ws?room=%d", i%50), Mode: "reverse",
		Start: start, Credential: &cred, ConcurrentAtOpen: conc, CredentialConcurrentAtOpen: 1 + conc/997}
	r.Handshake = millionHandshake(i, kind)
	r.TLS = record.TLSInfo{
		Client:   &record.TLSLeg{Version: "TLS 1.3", Cipher: "TLS_AES_128_GCM_SHA256", SNI: "chat.example", HandshakeMS: 2.1 + float64(i%7)/10},
		Upstream: &record.TLSLeg{Version: "TLS 1.3", Cipher: "TLS_AES_128_GCM_SHA256", SNI: "chat.example", ALPN: "http/1.1", HandshakeMS: 1.2 + float64(i%5)/10, Resumed: i%3 == 0},
	}
	r.Findings = []record.Finding{}
	if i%4 == 0 {
		r.Findings = append(r.Findings, record.Finding{Rule: "subprotocol-none-offered", Severity: record.SevInfo,
			Detail: "no Sec-WebSocket-Protocol header: the client offers no subprotocol (RFC 6455 §4.1, §11.3.4)"})
	}
	switch kind {
	case "rejected":
		millionRejected(&r)
	case "cap":
		millionDrop(&r, 1500*time.Millisecond, record.HowReset, true)
	case "idle":
		millionDrop(&r, millionIdle+time.Duration(i%900)*time.Millisecond, record.HowEOF, false)
		r.Findings = append(r.Findings, record.Finding{Rule: "no-keepalive", Severity: record.SevWarn,
			Detail: "no ping from the client in 60 s"})
	default:
		millionClean(&r, 30*time.Second+time.Duration(i%90)*time.Second)
	}
	return r
}

func millionHandshake(i int, kind string) record.Handshake {
	h := record.Handshake{Status: 101, LatencyMS: 3.5 + float64(i%11)/10, Method: "GET", URI: "/ws?room=" + strconv.Itoa(i%50), Proto: "HTTP/1.1",
		RequestHeaders: []record.Header{{Name: "Host", Value: "chat.example"}, {Name: "Upgrade", Value: "websocket"},
			{Name: "Connection", Value: "Upgrade"}, {Name: "Sec-WebSocket-Version", Value: "13"},
			{Name: "Sec-WebSocket-Key", Value: "dGhlIHNhbXBsZSBub25jZQ=="}, {Name: "Authorization", Value: "[redacted]"},
			{Name: "User-Agent", Value: "Apache-HttpClient/4.5.14 (Java/17.0.9)"}},
		ResponseHeaders: []record.Header{{Name: "Upgrade", Value: "websocket"}, {Name: "Connection", Value: "Upgrade"},
			{Name: "Sec-WebSocket-Accept", Value: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}, {Name: "Date", Value: "Tue, 01 Dec 2026 10:00:00 GMT"}}}
	if kind == "rejected" {
		h.Status = 429
		h.ResponseHeaders = []record.Header{{Name: "Retry-After", Value: "5"}, {Name: "Content-Length", Value: "0"}}
	}
	return h
}

func millionRejected(r *record.Session) {
	r.DurationMS = r.Handshake.LatencyMS + 1
	r.End = record.End{At: r.Start.Add(time.Duration(r.DurationMS * float64(time.Millisecond))), First: record.SideUpstream, How: record.HowHandshakeRejects}
	r.Verdict = record.VerdictRejected
	r.Findings = append(r.Findings, record.Finding{Rule: "status-not-101", Severity: record.SevError, Detail: "the upstream answered 429"})
}

// millionClean: client pings every 20 s, upstream every 30 s, a close
// handshake by the client.
func millionClean(r *record.Session, life time.Duration) {
	ms := float64(life) / float64(time.Millisecond)
	r.DurationMS = ms
	end := r.Start.Add(life)
	r.End = record.End{At: end, First: record.SideClient, How: record.HowCloseHandshake}
	r.Close.Client = &record.CloseFrame{Code: 1000, At: end.Add(-5 * time.Millisecond)}
	r.Close.Upstream = &record.CloseFrame{Code: 1000, At: end.Add(-2 * time.Millisecond)}
	code := 1000
	r.ClientCloseCode, r.UpstreamCloseCode = &code, &code
	r.Verdict = record.VerdictClean
	cp, up := int64(ms/20000), int64(ms/30000)
	r.Keepalive = record.Keepalive{ClientPings: cp, UpstreamPings: up,
		ClientPongRTTMS: &record.RTT{P50: 40, Max: 55}, UpstreamPongRTTMS: &record.RTT{P50: 3, Max: 9},
		MaxSilenceMS: 20000, SilenceBeforeEnd: 800, ClientSilenceBeforeEndMS: 800, ClientMaxSilenceMS: 20000}
	if cp >= 2 {
		r.Keepalive.ClientPingIntervalMS = &record.Interval{Min: 19990, P50: 20000, Max: 20010}
	}
	if up >= 2 {
		r.Keepalive.UpstreamPingIntervalMS = &record.Interval{Min: 29990, P50: 30000, Max: 30010}
	}
	r.Frames.ClientToUpstream = record.DirFrames{Frames: cp + 10, Bytes: 900, Text: 10, Ping: cp, Close: 1}
	r.Frames.UpstreamToClient = record.DirFrames{Frames: up + 20, Bytes: 4000, Text: 20, Ping: up, Close: 1}
	r.TLS.Client.End, r.TLS.Upstream.End = "close_notify", "close_notify"
}

// millionDrop: the upstream ends the session without a close frame after
// life; the client saw 1006. A silent session has no client ping.
func millionDrop(r *record.Session, life time.Duration, how record.How, pinging bool) {
	ms := float64(life) / float64(time.Millisecond)
	r.DurationMS = ms
	r.End = record.End{At: r.Start.Add(life), First: record.SideUpstream, How: how, Error: "read tcp: connection reset by peer"}
	code := 1006
	r.ClientCloseCode, r.UpstreamCloseCode = &code, &code
	r.Abnormal, r.Verdict = true, record.VerdictAbnormalUp
	up := int64(ms / 30000)
	r.Keepalive = record.Keepalive{UpstreamPings: up, ClientPongRTTMS: &record.RTT{P50: 40, Max: 48},
		MaxSilenceMS: ms, SilenceBeforeEnd: ms - 30, ClientSilenceBeforeEndMS: ms - 30, ClientMaxSilenceMS: ms - 30}
	if pinging {
		r.Keepalive.SilenceBeforeEnd, r.Keepalive.ClientSilenceBeforeEndMS, r.Keepalive.ClientMaxSilenceMS = 300, 300, 300
	}
	if up >= 2 {
		r.Keepalive.UpstreamPingIntervalMS = &record.Interval{Min: 29990, P50: 30000, Max: 30010}
	}
	r.Frames.ClientToUpstream = record.DirFrames{Frames: 1, Bytes: 60, Text: 1}
	r.Frames.UpstreamToClient = record.DirFrames{Frames: up + 2, Bytes: 300, Text: 2, Ping: up}
	r.TLS.Client.End, r.TLS.Upstream.End = "tcp", "tcp"
}

// writeMillionEvents writes the events the recorder logs for r: its TLS
// legs, its findings, the upstream's pings with the client's pongs, the end.
func writeMillionEvents(w io.Writer, r *record.Session) {
	var b bytes.Buffer
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	for _, l := range []struct {
		name string
		leg  *record.TLSLeg
	}{{"client", r.TLS.Client}, {"upstream", r.TLS.Upstream}} {
		fmt.Fprintf(&b, `{"level":"info","time":%q,"session":%q,"event":"tls","leg":%q,"version":%q,"cipher":%q,"resumed":%t,"handshake_ms":%v,"error":"","alert":""}`+"\n",
			ts(r.Start.Add(2*time.Millisecond)), r.ID, l.name, l.leg.Version, l.leg.Cipher, l.leg.Resumed, l.leg.HandshakeMS)
	}
	for _, f := range r.Findings {
		fmt.Fprintf(&b, `{"level":"info","time":%q,"session":%q,"event":"finding","rule":%q,"severity":%q,"detail":%q}`+"\n",
			ts(r.Start.Add(4*time.Millisecond)), r.ID, f.Rule, f.Severity, f.Detail)
	}
	if r.Handshake.Status != 101 {
		fmt.Fprintf(&b, `{"level":"warn","time":%q,"session":%q,"event":"http","method":"GET","url":"/ws","status":%d,"latency_ms":4}`+"\n",
			ts(r.Start.Add(4*time.Millisecond)), r.ID, r.Handshake.Status)
	}
	end := endTime(r)
	for at := r.Start.Add(30 * time.Second); at.Before(end); at = at.Add(30 * time.Second) {
		fmt.Fprintf(&b, `{"level":"debug","time":%q,"session":%q,"event":"ping","dir":"upstream_to_client","len":0}`+"\n", ts(at), r.ID)
		fmt.Fprintf(&b, `{"level":"debug","time":%q,"session":%q,"event":"pong","dir":"client_to_upstream","len":0,"rtt_ms":40}`+"\n", ts(at.Add(40*time.Millisecond)), r.ID)
	}
	fmt.Fprintf(&b, `{"level":"info","time":%q,"session":%q,"event":"end","verdict":%q,"first":%q,"how":%q}`+"\n",
		ts(end), r.ID, r.Verdict, r.End.First, r.End.How)
	w.Write(b.Bytes())
}

// setConcurrentAtEnd fills concurrent_at_end as the recorder does: the
// upgraded sessions open at the end, the ending one included.
func setConcurrentAtEnd(recs []record.Session) {
	var starts, ends []int64
	for i := range recs {
		if recs[i].Handshake.Status == 101 {
			starts = append(starts, recs[i].Start.UnixNano())
			ends = append(ends, endTime(&recs[i]).UnixNano())
		}
	}
	sort.Slice(ends, func(i, j int) bool { return ends[i] < ends[j] })
	for i := range recs {
		if recs[i].Handshake.Status != 101 {
			continue
		}
		t := endTime(&recs[i]).UnixNano()
		st := sort.Search(len(starts), func(k int) bool { return starts[k] > t })
		en := sort.Search(len(ends), func(k int) bool { return ends[k] >= t })
		recs[i].ConcurrentAtEnd = st - en
	}
}
