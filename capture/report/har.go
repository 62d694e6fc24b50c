package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/record"
)

// DefaultHARMaxMessages caps the messages (and, separately, the control
// frames) of one session in a HAR when HAROptions.MaxMessages is 0.
const DefaultHARMaxMessages = 1000

// HAROptions says what WriteHAR puts in the HAR.
type HAROptions struct {
	// IncludePayloads keeps message data (text secrets still redacted);
	// otherwise every message's data is "".
	IncludePayloads bool
	// MaxMessages caps the messages of one session: 0 means
	// DefaultHARMaxMessages, a negative value means no cap.
	MaxMessages int
}

// WriteHAR writes the run in dir as a HAR 1.2 document
// (http://www.softwareishard.com/blog/har-12-spec/) that Chrome DevTools
// imports: one entry per session with _resourceType "websocket", Chrome's
// _webSocketMessages from the "message" events, ping, pong and close frames
// in _webSocketControlFrames, and one entry per non-WebSocket request of the
// "http" events. Header values, URLs and text secrets are redacted. Lines
// that do not parse are left out and counted in d.Bad.
func WriteHAR(w io.Writer, d *capture.RunDir, opts HAROptions) error {
	h := newHARBuilder(opts)
	err := d.Sessions(func(r *record.Session) error {
		h.session(r)
		return nil
	})
	if err != nil {
		return err
	}
	err = capture.Lines(d, capture.EventsFile, func(ev *harEvent) error {
		h.event(ev)
		return nil
	})
	if err != nil {
		return err
	}
	return h.write(w, harRunVersion(d))
}

// harBuilder gathers a HAR as a run dir is read, each file once: an entry
// per session (not the record), then the events into them. The HAR is one
// document sorted by start, written at the end.
type harBuilder struct {
	entries  []*harEntry // the sessions'
	byID     map[string]*harEntry
	http     []*harEntry // the non-WebSocket requests'
	max      int
	payloads bool
}

func newHARBuilder(opts HAROptions) *harBuilder {
	max := opts.MaxMessages
	if max == 0 {
		max = DefaultHARMaxMessages
	}
	return &harBuilder{byID: map[string]*harEntry{}, max: max, payloads: opts.IncludePayloads}
}

// session adds the entry of a session record; r may be changed afterwards.
func (h *harBuilder) session(r *record.Session) {
	e := harSessionEntry(r)
	h.entries = append(h.entries, e)
	h.byID[r.ID] = e
}

// event adds an event of events.jsonl to its session's entry, or the entry
// of a non-WebSocket request; the sessions come first.
func (h *harBuilder) event(ev *harEvent) {
	e := h.byID[ev.Session]
	switch {
	case ev.Event == "http" && e == nil:
		h.http = append(h.http, harHTTPEntry(ev))
	case e == nil:
	case ev.Event == "message":
		harAddCapped(e.Messages, &e.MessagesOmitted, h.max, harMessageOf(ev, h.payloads))
	case ev.Event == "ping" || ev.Event == "pong" || ev.Event == "close":
		harAddCapped(e.ControlFrames, &e.ControlsOmitted, h.max, harControlOf(ev))
	}
}

// write sorts the entries by start and writes the document as
// json.Encoder would indent it whole, but entry by entry: only one entry's
// text is held at a time, and each entry is let go once written.
func (h *harBuilder) write(w io.Writer, version string) error {
	entries := append(h.entries, h.http...)
	h.entries, h.http, h.byID = nil, nil, nil
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].start.Before(entries[j].start) })
	bw := bufio.NewWriterSize(w, 64<<10)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(version); err != nil {
		return fmt.Errorf("writing HAR: %w", err)
	}
	fmt.Fprintf(bw, "{\n  \"log\": {\n    \"version\": \"1.2\",\n    \"creator\": {\n      \"name\": \"wstap\",\n      \"version\": %s\n    },\n    \"entries\": ",
		bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	enc.SetIndent("      ", "  ")
	for i, e := range entries {
		buf.Reset()
		if err := enc.Encode(e); err != nil {
			return fmt.Errorf("writing HAR: %w", err)
		}
		entries[i] = nil
		if i == 0 {
			bw.WriteByte('[')
		} else {
			bw.WriteByte(',')
		}
		bw.WriteString("\n      ")
		bw.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	}
	if len(entries) > 0 {
		bw.WriteString("\n    ]")
	} else {
		bw.WriteString("[]") // HAR 1.2: entries is an array, empty or not
	}
	bw.WriteString("\n  }\n}\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing HAR: %w", err)
	}
	return nil
}

type harEntry struct {
	start           time.Time
	StartedDateTime string      `json:"startedDateTime"`
	Time            float64     `json:"time"`
	Request         harRequest  `json:"request"`
	Response        harResponse `json:"response"`
	Cache           struct{}    `json:"cache"`
	Timings         harTimings  `json:"timings"`
	ServerIPAddress string      `json:"serverIPAddress,omitempty"`
	Connection      string      `json:"connection,omitempty"`
	Comment         string      `json:"comment,omitempty"`
	ResourceType    string      `json:"_resourceType"`
	// Messages and ControlFrames are nil on non-WebSocket entries.
	Messages        *[]harMessage `json:"_webSocketMessages,omitempty"`
	ControlFrames   *[]harMessage `json:"_webSocketControlFrames,omitempty"`
	MessagesOmitted int           `json:"_webSocketMessagesOmitted,omitempty"`
	ControlsOmitted int           `json:"_webSocketControlFramesOmitted,omitempty"`
	Session         *harSession   `json:"_wstap,omitempty"`
}

type harRequest struct {
	Method      string      `json:"method"`
	URL         string      `json:"url"`
	HTTPVersion string      `json:"httpVersion"`
	Cookies     []harCookie `json:"cookies"`
	Headers     []harNV     `json:"headers"`
	QueryString []harNV     `json:"queryString"`
	HeadersSize int         `json:"headersSize"`
	BodySize    int         `json:"bodySize"`
}

type harResponse struct {
	Status      int         `json:"status"`
	StatusText  string      `json:"statusText"`
	HTTPVersion string      `json:"httpVersion"`
	Cookies     []harCookie `json:"cookies"`
	Headers     []harNV     `json:"headers"`
	Content     harContent  `json:"content"`
	RedirectURL string      `json:"redirectURL"`
	HeadersSize int         `json:"headersSize"`
	BodySize    int         `json:"bodySize"`
}

type harNV struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type harCookie struct {
	Name     string `json:"name"`
	Value    string `json:"value"`
	Path     string `json:"path,omitempty"`
	HTTPOnly bool   `json:"httpOnly,omitempty"`
	Secure   bool   `json:"secure,omitempty"`
}

type harContent struct {
	Size     int    `json:"size"`
	MimeType string `json:"mimeType"`
}

type harTimings struct {
	Send    float64 `json:"send"`
	Wait    float64 `json:"wait"`
	Receive float64 `json:"receive"`
}

// harMessage is one entry of Chrome's _webSocketMessages: type "send" (client
// to upstream) or "receive", time in epoch seconds, opcode, data (base64 for
// binary). Control frames add the close code and reason and the payload length.
type harMessage struct {
	Type   string  `json:"type"`
	Time   float64 `json:"time"`
	Opcode int     `json:"opcode"`
	Data   string  `json:"data"`
	Len    *int64  `json:"len,omitempty"`
	Code   *int    `json:"code,omitempty"`
	Reason string  `json:"reason,omitempty"`
}

// harSession is what wstap concluded about the session.
type harSession struct {
	ID                string `json:"id"`
	Verdict           string `json:"verdict"`
	Abnormal          bool   `json:"abnormal"`
	ClientCloseCode   *int   `json:"client_close_code"`
	UpstreamCloseCode *int   `json:"upstream_close_code"`
	EndFirst          string `json:"end_first"`
	EndHow            string `json:"end_how"`
}

// harSessionEntry builds the HAR entry of a session record, redacted.
func harSessionEntry(r *record.Session) *harEntry {
	h := r.Handshake
	reqHeaders := harHeaders(h.RequestHeaders)
	respHeaders := harHeaders(h.ResponseHeaders)
	target := capture.RedactURL(r.Target)
	if target == "" {
		target = capture.RedactURL("ws://" + harHeaderValue(h.RequestHeaders, "Host") + h.URI)
	}
	u := harURL(target)
	e := &harEntry{
		start:           r.Start,
		StartedDateTime: r.Start.Format(time.RFC3339Nano),
		Time:            harNonNegative(h.LatencyMS),
		Request: harRequest{
			Method:      harOr(h.Method, http.MethodGet),
			URL:         u,
			HTTPVersion: harOr(h.Proto, "HTTP/1.1"),
			Cookies:     harRequestCookies(reqHeaders),
			Headers:     reqHeaders,
			QueryString: harQuery(u),
			HeadersSize: -1,
			BodySize:    0,
		},
		Response: harResponse{
			Status:      h.Status,
			StatusText:  http.StatusText(h.Status),
			HTTPVersion: harOr(h.Proto, "HTTP/1.1"),
			Cookies:     harResponseCookies(respHeaders),
			Headers:     respHeaders,
			Content:     harContent{MimeType: harOr(harHeaderValue(h.ResponseHeaders, "Content-Type"), "x-unknown")},
			RedirectURL: capture.RedactURL(harHeaderValue(h.ResponseHeaders, "Location")),
			HeadersSize: -1,
			BodySize:    -1,
		},
		Timings:       harTimings{Wait: harNonNegative(h.LatencyMS)},
		Connection:    r.ID,
		ResourceType:  "websocket",
		Messages:      &[]harMessage{},
		ControlFrames: &[]harMessage{},
		Comment: fmt.Sprintf("wstap session %s: verdict %s, ended first by %s (%s)",
			r.ID, r.Verdict, r.End.First, r.End.How),
		Session: &harSession{ID: r.ID, Verdict: string(r.Verdict), Abnormal: r.Abnormal,
			ClientCloseCode: r.ClientCloseCode, UpstreamCloseCode: r.UpstreamCloseCode,
			EndFirst: string(r.End.First), EndHow: string(r.End.How)},
	}
	if h.Status == http.StatusSwitchingProtocols {
		e.Response.BodySize = 0
	}
	if host, _, err := net.SplitHostPort(r.UpstreamAddr); err == nil {
		e.ServerIPAddress = host
	}
	return e
}

// harEvent holds the fields of events.jsonl lines the HAR uses.
type harEvent struct {
	Time      json.RawMessage `json:"time"`
	Session   string          `json:"session"`
	Event     string          `json:"event"`
	Dir       string          `json:"dir"`
	Opcode    int             `json:"opcode"`
	Len       *int64          `json:"len"`
	Data      *string         `json:"data"`
	Code      *int            `json:"code"`
	Reason    string          `json:"reason"`
	Method    string          `json:"method"`
	URL       string          `json:"url"`
	Status    int             `json:"status"`
	LatencyMS float64         `json:"latency_ms"`
}

func harAddCapped(list *[]harMessage, omitted *int, max int, m harMessage) {
	if max >= 0 && len(*list) >= max {
		*omitted++
		return
	}
	*list = append(*list, m)
}

func harMessageOf(ev *harEvent, payloads bool) harMessage {
	m := harMessage{Type: harDirection(ev.Dir), Time: harEpochSeconds(ev.Time), Opcode: ev.Opcode}
	if payloads && ev.Data != nil {
		m.Data = *ev.Data
		if ev.Opcode == 1 {
			m.Data = redactText(m.Data)
		}
	}
	return m
}

func harControlOf(ev *harEvent) harMessage {
	m := harMessage{Type: harDirection(ev.Dir), Time: harEpochSeconds(ev.Time), Len: ev.Len}
	switch ev.Event {
	case "close":
		m.Opcode, m.Code, m.Reason = 8, ev.Code, redactText(ev.Reason)
	case "ping":
		m.Opcode = 9
	case "pong":
		m.Opcode = 10
	}
	return m
}

// harDirection names a direction as Chrome does, from the client's side.
func harDirection(dir string) string {
	if dir == "upstream_to_client" {
		return "receive"
	}
	return "send"
}

// harHTTPEntry is the entry of a non-WebSocket request ("http" event).
func harHTTPEntry(ev *harEvent) *harEntry {
	end, _ := harTime(ev.Time)
	start := end.Add(-time.Duration(ev.LatencyMS * float64(time.Millisecond)))
	u := capture.RedactURL(ev.URL)
	return &harEntry{
		start:           start,
		StartedDateTime: start.Format(time.RFC3339Nano),
		Time:            harNonNegative(ev.LatencyMS),
		Request: harRequest{Method: harOr(ev.Method, http.MethodGet), URL: u,
			HTTPVersion: "HTTP/1.1", Cookies: []harCookie{}, Headers: []harNV{},
			QueryString: harQuery(u), HeadersSize: -1, BodySize: -1},
		Response: harResponse{Status: ev.Status, StatusText: http.StatusText(ev.Status),
			HTTPVersion: "HTTP/1.1", Cookies: []harCookie{}, Headers: []harNV{},
			Content: harContent{MimeType: "x-unknown"}, HeadersSize: -1, BodySize: -1},
		Timings:      harTimings{Wait: harNonNegative(ev.LatencyMS)},
		ResourceType: "other",
	}
}

// harTime parses zerolog's time field: an RFC 3339 string or a Unix time
// in seconds, milliseconds, microseconds or nanoseconds.
func harTime(raw json.RawMessage) (time.Time, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		t, err := time.Parse(time.RFC3339Nano, s)
		return t, err == nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return time.Time{}, false
	}
	switch {
	case f > 1e17:
		return time.Unix(0, int64(f)), true
	case f > 1e14:
		return time.UnixMicro(int64(f)), true
	case f > 1e11:
		return time.UnixMilli(int64(f)), true
	}
	return time.Unix(0, int64(f*1e9)), true
}

func harEpochSeconds(raw json.RawMessage) float64 {
	t, ok := harTime(raw)
	if !ok {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// harURL turns ws:// into http:// and wss:// into https://.
func harURL(u string) string {
	switch {
	case strings.HasPrefix(u, "ws://"):
		return "http://" + u[len("ws://"):]
	case strings.HasPrefix(u, "wss://"):
		return "https://" + u[len("wss://"):]
	}
	return u
}

// queryString lists the query parameters of u as they are (already redacted).
func harQuery(u string) []harNV {
	qs := []harNV{}
	base, _, _ := strings.Cut(u, "#")
	_, q, ok := strings.Cut(base, "?")
	if !ok || q == "" {
		return qs
	}
	for _, p := range strings.Split(q, "&") {
		k, v, _ := strings.Cut(p, "=")
		qs = append(qs, harNV{Name: harUnescape(k), Value: harUnescape(v)})
	}
	return qs
}

func harUnescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

func harHeaders(hs []record.Header) []harNV {
	out := make([]harNV, 0, len(hs))
	for _, h := range hs {
		out = append(out, harNV{Name: h.Name, Value: RedactHeaderValue(h.Name, h.Value)})
	}
	return out
}

// harHeaderValue is the first value of the named header, unredacted.
func harHeaderValue(hs []record.Header, name string) string {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// harRequestCookies lists the cookies of (redacted) Cookie headers.
func harRequestCookies(hs []harNV) []harCookie {
	cs := []harCookie{}
	for _, h := range hs {
		if !strings.EqualFold(h.Name, "Cookie") {
			continue
		}
		for _, p := range strings.Split(h.Value, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok {
				cs = append(cs, harCookie{Name: k, Value: v})
			}
		}
	}
	return cs
}

// harResponseCookies lists the cookies of (redacted) Set-Cookie headers.
func harResponseCookies(hs []harNV) []harCookie {
	cs := []harCookie{}
	for _, h := range hs {
		if !strings.EqualFold(h.Name, "Set-Cookie") {
			continue
		}
		parts := strings.Split(h.Value, ";")
		k, v, _ := strings.Cut(strings.TrimSpace(parts[0]), "=")
		c := harCookie{Name: k, Value: v}
		for _, a := range parts[1:] {
			an, av, _ := strings.Cut(strings.TrimSpace(a), "=")
			switch strings.ToLower(an) {
			case "path":
				c.Path = av
			case "httponly":
				c.HTTPOnly = true
			case "secure":
				c.Secure = true
			}
		}
		cs = append(cs, c)
	}
	return cs
}

// harRunVersion is the wstap version recorded in run.json, or "dev".
func harRunVersion(d *capture.RunDir) string {
	if !d.Has(capture.RunFile) {
		return "dev"
	}
	m, _ := d.Info()
	if m == nil || m.Version == "" {
		return "dev"
	}
	return m.Version
}

func harOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func harNonNegative(f float64) float64 {
	if f < 0 {
		return 0
	}
	return f
}
