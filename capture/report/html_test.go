package report

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wstap/wstap/capture/record"
	"github.com/wstap/wstap/internal/testkit"
)

// storyRun is the 1006 story in small: a server that drops sessions above
// 150 concurrent, clients pinging every 20 s, REST calls with 429s.
func storyRun(t *testing.T) *Summary {
	t.Helper()
	tr := cappedRuns(150, 1)[0]
	extra := mixedRun(9, testT0)
	tr.recs = append(tr.recs, extra.recs...)
	for i := range tr.recs {
		tr.events = append(tr.events, sessionEvents(&tr.recs[i])...)
	}
	tr.events = append(tr.events, extra.events...)
	tr.manifest = extra.manifest
	return Summarize(loadTestRun(t, tr.write(t, filepath.Join(t.TempDir(), "run"))))
}

// sessionEvents are the events the recorder logs for a session: the
// handshake, a client ping every 20 s with its pong, an upstream ping every
// 30 s, the close frames and the end.
func sessionEvents(r *record.Session) []map[string]any {
	end := endTime(r)
	es := []map[string]any{ev(r.Start.Add(12*time.Millisecond), r.ID, "handshake", "status", r.Handshake.Status, "latency_ms", 12)}
	for at := r.Start.Add(5 * time.Second); at.Before(end); at = at.Add(20 * time.Second) {
		es = append(es, ev(at, r.ID, "ping", "dir", "client_to_upstream", "len", 4),
			ev(at.Add(3*time.Millisecond), r.ID, "pong", "dir", "upstream_to_client", "len", 4, "rtt_ms", 3))
	}
	for at := r.Start.Add(30 * time.Second); at.Before(end); at = at.Add(30 * time.Second) {
		es = append(es, ev(at, r.ID, "ping", "dir", "upstream_to_client", "len", 0),
			ev(at.Add(40*time.Millisecond), r.ID, "pong", "dir", "client_to_upstream", "len", 0, "rtt_ms", 40))
	}
	return append(es, ev(end, r.ID, "end", "verdict", r.Verdict, "first", r.End.First, "how", r.End.How))
}

var verdictCell = regexp.MustCompile(`data-verdict="([a-z-]+)"[^>]*>(\d+)<`)

// verdictCounts reads the verdict table out of an HTML document.
func verdictCounts(t *testing.T, html string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, m := range verdictCell.FindAllStringSubmatch(html, -1) {
		n, err := strconv.Atoi(m[2])
		if err != nil {
			t.Fatal(err)
		}
		got[m[1]] = n
	}
	return got
}

// TestHTMLSelfContained: the page has every verdict count, charts drawn as
// SVG, a timeline per abnormal session, and nothing to fetch or run.
func TestHTMLSelfContained(t *testing.T) {
	s := storyRun(t)
	var b bytes.Buffer
	if err := s.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	got := verdictCounts(t, page)
	for _, v := range s.Verdicts {
		if got[v.Verdict] != v.Count {
			t.Errorf("verdict %s: page says %d, want %d", v.Verdict, got[v.Verdict], v.Count)
		}
	}
	for _, bad := range []string{"<script", "<link", " src=", "url(", "@import", "https://"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q: not self-contained", bad)
		}
	}
	for _, id := range []string{"chart-open", "chart-ping", "causes", "explanations"} {
		if !strings.Contains(page, `id="`+id+`"`) {
			t.Errorf("page lacks chart %s", id)
		}
	}
	if n, want := strings.Count(page, `<svg class="timeline"`), min(s.Abnormal, maxAbnormalRows); n != want || n == 0 {
		t.Errorf("%d session timelines, want %d", n, want)
	}
	if !strings.Contains(page, "429 <span") || !strings.Contains(page, `class="count" data-rule="no-keepalive"`) {
		t.Error("page lacks the 429s or the no-keepalive finding")
	}
}

// TestHTMLChromium loads report.html in headless Chromium: the verdict
// counts are in the DOM, no console error, and a screenshot is kept.
func TestHTMLChromium(t *testing.T) {
	chromium := testkit.NeedTool(t, "chromium", "chromium-browser", "google-chrome")
	dir := t.TempDir()
	s := storyRun(t)
	page := filepath.Join(dir, "report.html")
	f, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteHTML(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	url := "file://" + page

	dom, logs := runChromium(t, chromium, dir, "--dump-dom", url)
	got := verdictCounts(t, dom)
	for _, v := range s.Verdicts {
		if c, ok := got[v.Verdict]; !ok || c != v.Count {
			t.Errorf("DOM verdict %s = %d (present %v), want %d", v.Verdict, c, ok, v.Count)
		}
	}
	if !strings.Contains(dom, `id="chart-open"`) || !strings.Contains(dom, "<svg") {
		t.Error("DOM lacks the charts")
	}
	shot := filepath.Join(dir, "report.png")
	_, shotLogs := runChromium(t, chromium, dir, "--screenshot="+shot, "--window-size=1280,2000", "--hide-scrollbars", url)
	for _, l := range strings.Split(logs+shotLogs, "\n") {
		if strings.Contains(l, "Uncaught") || strings.Contains(l, "CONSOLE") || strings.Contains(l, ":console") {
			t.Errorf("console message: %s", l)
		}
	}
	fi, err := os.Stat(shot)
	if err != nil || fi.Size() < 20000 {
		t.Fatalf("screenshot %s: %v (size %v), want a rendered page", shot, err, fi)
	}
	keepArtifact(t, shot, "report.png")
	keepArtifact(t, page, "report.html")
}

// runChromium runs headless Chromium on its own profile, offline, and
// returns its stdout and its log (stderr).
func runChromium(t *testing.T, chromium, dir string, args ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	profile, err := os.MkdirTemp(dir, "profile")
	if err != nil {
		t.Fatal(err)
	}
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--enable-logging=stderr", "--v=0", "--user-data-dir=" + profile}
	cmd := exec.CommandContext(ctx, chromium, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", chromium, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), stderr.String()
}

// keepArtifact copies a file to $WSTAP_ARTIFACTS, or logs where it stays.
func keepArtifact(t *testing.T, path, name string) {
	t.Helper()
	dst := os.Getenv("WSTAP_ARTIFACTS")
	if dst == "" {
		t.Logf("artifact %s: %s", name, path)
		return
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(filepath.Join(dst, name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("artifact %s: %s", name, filepath.Join(dst, name))
}
