package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wstap/wstap/internal/testkit"
)

// startPrometheus runs Debian's prometheus on loopback, scraping target
// (host:port serving /metrics) every second, and returns its HTTP API's
// base URL once it is ready. It skips (fails under WSTAP_TEST_STRICT=1)
// when prometheus is not installed.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	bin := testkit.NeedTool(t, "prometheus")
	dir := t.TempDir()
	conf := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: wstap
    static_configs:
      - targets: [%q]
`, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := testkit.FreeAddr(t)
	out := &testkit.SyncBuffer{}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+listen, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out)
		}
	})
	api := "http://" + listen
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(api + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return api
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus on %s not ready after 20 s (%v); output:\n%s", listen, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// promSample is one series of an instant query's vector.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  float64
}

// promQuery runs an instant PromQL query over Prometheus's HTTP API
// (/api/v1/query). A query Prometheus refuses (a parse error, say) is an
// error naming its errorType.
func promQuery(api, expr string) ([]promSample, error) {
	resp, err := http.Get(api + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return nil, fmt.Errorf("querying prometheus: %w", err)
	}
	defer resp.Body.Close()
	var r struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("reading prometheus's answer (HTTP %d): %w", resp.StatusCode, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("prometheus: %s: %s", r.ErrorType, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("prometheus: result type %q, want vector", r.Data.ResultType)
	}
	out := make([]promSample, 0, len(r.Data.Result))
	for _, s := range r.Data.Result {
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("prometheus: value %v: %w", s.Value[1], err)
		}
		out = append(out, promSample{Metric: s.Metric, Value: v})
	}
	return out, nil
}

// promValue is the value of a query that returns one series; ok is false
// when it returns none.
func promValue(t *testing.T, api, expr string) (v float64, ok bool) {
	t.Helper()
	s, err := promQuery(api, expr)
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	if len(s) > 1 {
		t.Fatalf("%s: %d series, want one: %v", expr, len(s), s)
	}
	if len(s) == 0 {
		return 0, false
	}
	return s[0].Value, true
}

// waitProm polls expr until want accepts its value (10 s at most); it
// returns whether it did.
func waitProm(t *testing.T, api, expr string, want func(float64) bool) bool {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if v, ok := promValue(t, api, expr); ok && want(v) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// echoOrDrop echoes messages; on the text "drop" it closes its TCP
// connection without a close frame, as a platform dropping a session does.
func echoOrDrop(c *websocket.Conn) {
	defer c.Close()
	for {
		op, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if string(msg) == "drop" {
			c.UnderlyingConn().Close()
			return
		}
		if err := c.WriteMessage(op, msg); err != nil {
			return
		}
	}
}

// holdSession sends a text message every 100 ms for d, reading each echo,
// then closes cleanly; closing is closed when the close begins.
func holdSession(c *websocket.Conn, d time.Duration, closing chan<- struct{}) error {
	defer c.Close()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if err := c.WriteMessage(websocket.TextMessage, []byte("tick")); err != nil {
			return fmt.Errorf("writing: %w", err)
		}
		if _, _, err := c.ReadMessage(); err != nil {
			return fmt.Errorf("reading the echo: %w", err)
		}
	}
	close(closing)
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return nil
		}
	}
}

// TestMetricsPrometheus: a real Prometheus scrapes 'wstap proxy --metrics'
// every second. A gorilla session held open for 3 s shows its frames in
// PromQL before it ends; after the upstream drops a second session, the
// 1006 count is 1, by the upstream; and every query of the Grafana
// dashboard in docs/ runs and returns series.
func TestMetricsPrometheus(t *testing.T) {
	testkit.NeedTool(t, "prometheus")
	up := &websocket.Upgrader{}
	upURL, _ := testkit.WSServer(t, false, up, echoOrDrop)
	r := startMetricsProxy(t, upURL)
	addr, maddr := r.srv.Addr().String(), r.metrics.Addr().String()
	api := startPrometheus(t, maddr)
	if !waitProm(t, api, `up{job="wstap"}`, func(v float64) bool { return v == 1 }) {
		t.Fatalf("prometheus never scraped %s", maddr)
	}

	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/live", nil)
	if err != nil {
		t.Fatal(err)
	}
	closing, held := make(chan struct{}), make(chan error, 1)
	go func() { held <- holdSession(c, 3*time.Second, closing) }()
	live := `wstap_frames_total{direction="client_to_upstream"}`
	seen := waitProm(t, api, live, func(v float64) bool { return v > 0 })
	select {
	case <-closing:
		t.Fatalf("%s > 0 only once the session was closing (seen: %v); it must show while the session is open", live, seen)
	default:
	}
	if !seen {
		t.Fatalf("%s stayed 0 while the session was open", live)
	}
	if n := r.rec.Counters().Sessions; n != 0 {
		t.Fatalf("%d sessions recorded already, want the frames of a session still open", n)
	}
	if v, _ := promValue(t, api, `wstap_sessions_active`); v != 1 {
		t.Errorf("wstap_sessions_active %v while the session is open, want 1", v)
	}
	for _, q := range []string{`wstap_frames_total{direction="upstream_to_client"}`,
		`wstap_frame_bytes_total{direction="client_to_upstream"}`, `wstap_frame_bytes_total{direction="upstream_to_client"}`} {
		if !waitProm(t, api, q, func(v float64) bool { return v > 0 }) {
			t.Errorf("%s stayed 0 while the session was open", q)
		}
	}
	if err := <-held; err != nil {
		t.Fatal(err)
	}

	dropSession(t, "ws://"+addr+"/drop")
	for q, want := range map[string]float64{
		`wstap_sessions_abnormal_total{first="upstream"}`:              1,
		`sum(wstap_sessions_abnormal_total)`:                           1,
		`wstap_sessions_ended_total{verdict="abnormal-upstream-drop"}`: 1,
		`wstap_sessions_ended_total{verdict="clean"}`:                  1,
		`wstap_sessions_active`:                                        0,
	} {
		if !waitProm(t, api, q, func(v float64) bool { return v == want }) {
			v, _ := promValue(t, api, q)
			t.Errorf("%s = %v, want %v", q, v, want)
		}
	}
	t.Run("dashboard", func(t *testing.T) { checkDashboardQueries(t, api) })
}

// dropSession opens a session that the upstream drops (echoOrDrop) and
// waits until the client sees its end.
func dropSession(t *testing.T, u string) {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte("drop")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = c.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != websocket.CloseAbnormalClosure {
		t.Fatalf("client's end after the drop: %v, want gorilla's 1006", err)
	}
}

// startMetricsProxy starts 'wstap proxy --metrics 127.0.0.1:0' in front of
// upURL; it is stopped when the test ends.
func startMetricsProxy(t *testing.T, upURL string) *running {
	t.Helper()
	dir := t.TempDir()
	r, err := startProxy(&proxyOptions{listen: "127.0.0.1:0", upstream: upURL,
		out: dir, caDir: filepath.Join(dir, "ca"), maxHeaderBytes: 64 << 10, headerTimeout: 30 * time.Second,
		latePong: 5 * time.Second, noKeepalive: 30 * time.Second, maxPerToken: 3, metrics: "127.0.0.1:0",
		args: []string{"test"}}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.stop() })
	return r
}

// dashboardQueries returns the PromQL of every panel target of the Grafana
// dashboard in docs/, rows' panels included, by panel title.
func dashboardQueries(t *testing.T) (exprs []string, titles []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "grafana-wstap.json"))
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string  `json:"title"`
		Panels  []panel `json:"panels"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	}
	var d struct {
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("docs/grafana-wstap.json: %v", err)
	}
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				exprs, titles = append(exprs, tg.Expr), append(titles, p.Title)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return exprs, titles
}

// grafanaVars stands in for the dashboard's variables as Grafana expands
// them: $__rate_interval is four scrape intervals (1 s here).
var grafanaVars = strings.NewReplacer("$__rate_interval", "4s", "$__range", "5m", "$__interval", "1s", "$instance", ".*")

// checkDashboardQueries runs every panel's query against api: each must
// parse and return at least one series.
func checkDashboardQueries(t *testing.T, api string) {
	exprs, titles := dashboardQueries(t)
	if len(exprs) < 8 {
		t.Fatalf("%d queries in the dashboard, want one per panel (8 or more)", len(exprs))
	}
	for i, e := range exprs {
		q := grafanaVars.Replace(e)
		if strings.Contains(q, "$") {
			t.Errorf("panel %q: %s uses a variable the test does not know", titles[i], e)
			continue
		}
		s, err := promQuery(api, q)
		switch {
		case err != nil:
			t.Errorf("panel %q: %s: %v", titles[i], q, err)
		case len(s) == 0:
			t.Errorf("panel %q: %s returns no series", titles[i], q)
		}
	}
}

// TestMetricsDashboardJSON: the Grafana dashboard in docs/ has a Prometheus
// datasource variable that every panel and target uses, a schemaVersion of
// Grafana 10.3 or later, and names only metrics a running proxy serves.
func TestMetricsDashboardJSON(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "grafana-wstap.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		SchemaVersion int `json:"schemaVersion"`
		Templating    struct {
			List []struct{ Name, Type, Query any } `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title      string `json:"title"`
			Datasource struct {
				Type, UID string
			} `json:"datasource"`
			Targets []struct {
				Datasource struct{ Type, UID string } `json:"datasource"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("docs/grafana-wstap.json: %v", err)
	}
	if d.SchemaVersion < 39 {
		t.Errorf("schemaVersion %d, want 39 or later (Grafana 10.3+)", d.SchemaVersion)
	}
	hasDS := false
	for _, v := range d.Templating.List {
		hasDS = hasDS || (v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus")
	}
	if !hasDS {
		t.Error(`no templating variable "datasource" of type datasource, query prometheus`)
	}
	for _, p := range d.Panels {
		ok := p.Datasource.Type == "prometheus" && p.Datasource.UID == "${datasource}"
		for _, tg := range p.Targets {
			ok = ok && tg.Datasource.UID == "${datasource}"
		}
		if !ok {
			t.Errorf("panel %q does not use the ${datasource} variable everywhere", p.Title)
		}
	}

	r := startMetricsProxy(t, "ws://127.0.0.1:1")
	served := scrape(t, r.metrics.Addr().String())
	exprs, titles := dashboardQueries(t)
	for i, e := range exprs {
		for _, name := range metricName.FindAllString(e, -1) {
			base := strings.TrimSuffix(name, "_bucket")
			found := false
			for k := range served {
				found = found || k == base || strings.HasPrefix(k, base+"{") || strings.HasPrefix(k, name+"{")
			}
			if !found {
				t.Errorf("panel %q: %s is not among the metrics /metrics serves", titles[i], name)
			}
		}
	}
}

var metricName = regexp.MustCompile(`wstap_[a-z_]+`)
