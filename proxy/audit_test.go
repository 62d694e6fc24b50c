package proxy

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wstap/wstap/capture/record"
)

// crossSessionRules are the rules RunAudit fires; they need several sessions
// and have their own tests instead of golden files.
var crossSessionRules = []string{"key-reused", "token-shared", "token-expiring"}

// parseHandshake turns a golden file (a raw request, a line "----------",
// a raw response; LF or CRLF) into the Handshake the relay records.
func parseHandshake(t testing.TB, data string) *record.Handshake {
	t.Helper()
	data = strings.ReplaceAll(data, "\r\n", "\n")
	req, resp, ok := strings.Cut(data, "\n----------\n")
	if !ok {
		t.Fatal("no line ---------- between request and response")
	}
	hs := &record.Handshake{}
	line, headers := parseHead(t, req)
	hs.RequestHeaders = headers
	f := strings.Fields(line)
	if len(f) != 3 {
		t.Fatalf("request line %q", line)
	}
	hs.Method, hs.URI, hs.Proto = f[0], f[1], f[2]

	line, headers = parseHead(t, resp)
	hs.ResponseHeaders = headers
	f = strings.Fields(line)
	if len(f) < 2 {
		t.Fatalf("status line %q", line)
	}
	status, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatalf("status line %q: %v", line, err)
	}
	hs.Status = status
	hs.Subprotocol, _ = headerValue(headers, "Sec-WebSocket-Protocol")
	hs.Extensions, _ = headerValue(headers, "Sec-WebSocket-Extensions")
	return hs
}

// parseHead splits a head into its first line and its headers, in order.
func parseHead(t testing.TB, head string) (string, []record.Header) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(head, "\n"), "\n")
	var hs []record.Header
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			t.Fatalf("header line %q has no colon", l)
		}
		hs = append(hs, record.Header{Name: name, Value: strings.TrimSpace(value)})
	}
	return lines[0], hs
}

// audit runs both pure audits, as the session code does.
func audit(hs *record.Handshake) []record.Finding {
	return append(AuditRequest(hs), AuditResponse(hs)...)
}

func rulesOf(fs []record.Finding) []string {
	var rules []string
	for _, f := range fs {
		if !slices.Contains(rules, f.Rule) {
			rules = append(rules, f.Rule)
		}
	}
	return rules
}

// TestHandshakeGolden: every testdata/handshakes/RULE.txt fires RULE and no
// other rule; clean*.txt fire none.
func TestHandshakeGolden(t *testing.T) {
	files, err := filepath.Glob("../testdata/handshakes/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden handshakes: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txt")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := audit(parseHandshake(t, string(data)))
			var want []string
			if !strings.HasPrefix(name, "clean") {
				want = []string{name}
			}
			if !slices.Equal(rulesOf(got), want) {
				t.Fatalf("rules %v, want %v; findings: %+v", rulesOf(got), want, got)
			}
			for _, f := range got {
				t.Logf("%s %s: %s", f.Severity, f.Rule, f.Detail)
				if f.Severity != auditRules[f.Rule] || f.Severity == "" {
					t.Errorf("%s: severity %q, want %q", f.Rule, f.Severity, auditRules[f.Rule])
				}
				if !strings.Contains(f.Detail, "RFC ") {
					t.Errorf("%s: detail %q cites no RFC section", f.Rule, f.Detail)
				}
			}
		})
	}
}

// TestHandshakeGoldenCoversRules: each handshake rule has its golden file.
func TestHandshakeGoldenCoversRules(t *testing.T) {
	for rule := range auditRules {
		if slices.Contains(crossSessionRules, rule) {
			continue
		}
		if _, err := os.Stat(filepath.Join("../testdata/handshakes", rule+".txt")); err != nil {
			t.Errorf("rule %s has no golden file: %v", rule, err)
		}
	}
}

// cleanText is testdata/handshakes/clean.txt, the RFC 6455 §1.2 example.
var cleanText = sync.OnceValues(func() ([]byte, error) {
	return os.ReadFile("../testdata/handshakes/clean.txt")
})

// cleanHandshake returns a fresh copy of the clean handshake, which fires nothing.
func cleanHandshake(t testing.TB) *record.Handshake {
	data, err := cleanText()
	if err != nil {
		t.Fatal(err)
	}
	return parseHandshake(t, string(data))
}

// set replaces (or appends) header name; an empty value removes it.
func set(h []record.Header, name, value string) []record.Header {
	out := slices.DeleteFunc(slices.Clone(h), func(x record.Header) bool { return strings.EqualFold(x.Name, name) })
	if value != "" {
		out = append(out, record.Header{Name: name, Value: value})
	}
	return out
}

func TestAuditRequestCases(t *testing.T) {
	tests := []struct {
		name, header, value string
		method, proto       string
		want                string // rule, "" for none
		detail              string // a part of the detail
	}{
		{name: "keep-alive and Upgrade", header: "Connection", value: "keep-alive, Upgrade"},
		{name: "tokens are case-insensitive", header: "Upgrade", value: "WebSocket"},
		{name: "upgrade list", header: "Upgrade", value: "h2c, websocket"},
		{name: "upgrade missing", header: "Upgrade", want: "upgrade-token", detail: "Upgrade header missing"},
		{name: "upgrade with a product version", header: "Upgrade", value: "websocket, foo/1"},
		{name: "upgrade quoted", header: "Upgrade", value: "websockets, foo", want: "upgrade-token", detail: `Upgrade header "websockets, foo" in the request does not contain the token "websocket"`},
		{name: "connection close", header: "Connection", value: "close", want: "connection-token", detail: `Connection header "close"`},
		{name: "connection substring", header: "Connection", value: "upgrade-insecure", want: "connection-token"},
		{name: "version 8", header: "Sec-WebSocket-Version", value: "8", want: "version", detail: `Sec-WebSocket-Version header "8" is not 13`},
		{name: "version missing", header: "Sec-WebSocket-Version", want: "version"},
		{name: "key not base64", header: "Sec-WebSocket-Key", value: "not a key at all!", want: "key-format"},
		{name: "key 17 bytes", header: "Sec-WebSocket-Key", value: base64.StdEncoding.EncodeToString(make([]byte, 17)), want: "key-format"},
		{name: "key missing", header: "Sec-WebSocket-Key", want: "key-format", detail: "missing"},
		{name: "host empty", header: "Host", want: "host-missing"},
		{name: "POST", method: "POST", proto: "HTTP/1.1", want: "method-version", detail: `method "POST", version "HTTP/1.1"`},
		{name: "HTTP/0.9", method: "GET", proto: "HTTP/0.9", want: "method-version"},
		{name: "HTTP/2.0 is 1.1 or later", method: "GET", proto: "HTTP/2.0"},
		{name: "request line unknown", method: "-", proto: "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := cleanHandshake(t)
			if tt.header != "" {
				hs.RequestHeaders = set(hs.RequestHeaders, tt.header, tt.value)
			}
			if tt.method == "-" {
				hs.Method, hs.Proto = "", ""
			} else if tt.method != "" {
				hs.Method, hs.Proto = tt.method, tt.proto
			}
			got := AuditRequest(hs)
			var want []string
			if tt.want != "" {
				want = []string{tt.want}
			}
			if !slices.Equal(rulesOf(got), want) {
				t.Fatalf("rules %v, want %v: %+v", rulesOf(got), want, got)
			}
			if tt.detail != "" && !strings.Contains(got[0].Detail, tt.detail) {
				t.Errorf("detail %q does not contain %q", got[0].Detail, tt.detail)
			}
		})
	}
}

func TestAuditResponseCases(t *testing.T) {
	tests := []struct {
		name, reqHeader, reqValue, header, value string
		want, detail                             string
	}{
		{name: "protocol case differs", header: "Sec-WebSocket-Protocol", value: "Chat", want: "subprotocol-not-offered", detail: `selected Sec-WebSocket-Protocol "Chat", not one of the client's "chat, superchat"`},
		{name: "protocol selected, none offered", reqHeader: "Sec-WebSocket-Protocol", header: "Sec-WebSocket-Protocol", value: "chat", want: "subprotocol-not-offered", detail: "offered none"},
		{name: "second offered protocol", header: "Sec-WebSocket-Protocol", value: "superchat"},
		{name: "extension offered", reqHeader: "Sec-WebSocket-Extensions", reqValue: "x-foo; a=1, permessage-deflate", header: "Sec-WebSocket-Extensions", value: "permessage-deflate; server_no_context_takeover"},
		{name: "one extension of two not offered", reqHeader: "Sec-WebSocket-Extensions", reqValue: "x-foo", header: "Sec-WebSocket-Extensions", value: "x-foo, x-bar", want: "extension-not-offered", detail: `extension "x-bar"`},
		{name: "extension unparsable", header: "Sec-WebSocket-Extensions", value: "permessage-deflate; =", want: "extension-not-offered", detail: "not a valid extension list"},
		{name: "upgrade other", header: "Upgrade", value: "h2c", want: "response-upgrade-token", detail: `Upgrade header "h2c"`},
		{name: "accept duplicated", header: "Sec-WebSocket-Accept", value: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=, s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", want: "accept-mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := cleanHandshake(t)
			if tt.reqHeader != "" {
				hs.RequestHeaders = set(hs.RequestHeaders, tt.reqHeader, tt.reqValue)
			}
			hs.ResponseHeaders = set(hs.ResponseHeaders, tt.header, tt.value)
			got := AuditResponse(hs)
			var want []string
			if tt.want != "" {
				want = []string{tt.want}
			}
			if !slices.Equal(rulesOf(got), want) {
				t.Fatalf("rules %v, want %v: %+v", rulesOf(got), want, got)
			}
			if tt.detail != "" && !strings.Contains(got[0].Detail, tt.detail) {
				t.Errorf("detail %q does not contain %q", got[0].Detail, tt.detail)
			}
		})
	}
}

func TestAuditResponseStatus(t *testing.T) {
	for status, want := range map[int]string{429: "status 429 Too Many Requests, not 101", 599: "status 599, not 101"} {
		hs := cleanHandshake(t)
		hs.Status = status
		got := AuditResponse(hs)
		if len(got) != 1 || got[0].Rule != "status-not-101" || !strings.HasPrefix(got[0].Detail, want) {
			t.Errorf("status %d: %+v, want one status-not-101 %q", status, got, want)
		}
	}
}

func TestAuditResponseNoAnswer(t *testing.T) {
	hs := cleanHandshake(t)
	hs.Status, hs.ResponseHeaders = 0, nil
	if got := AuditResponse(hs); got != nil {
		t.Errorf("no response read: %+v, want none", got)
	}
	if AuditRequest(nil) != nil || AuditResponse(nil) != nil {
		t.Error("nil handshake has findings")
	}
}

// TestAuditDuplicateResponseHeader: §11.3.3 allows one Sec-WebSocket-Accept.
func TestAuditDuplicateResponseHeader(t *testing.T) {
	hs := cleanHandshake(t)
	hs.ResponseHeaders = append(hs.ResponseHeaders, record.Header{Name: "sec-websocket-accept", Value: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="})
	got := AuditResponse(hs)
	// Joined as one list ("a, a"), the value no longer matches either.
	if want := []string{"accept-mismatch", "duplicate-header"}; !slices.Equal(rulesOf(got), want) {
		t.Fatalf("rules %v, want %v", rulesOf(got), want)
	}
	if d := got[1].Detail; !strings.Contains(d, "Sec-WebSocket-Accept header appears 2 times in the 101 response") {
		t.Errorf("detail %q", d)
	}
}

// TestAcceptForRFCExample is the worked example of RFC 6455 §1.3.
func TestAcceptForRFCExample(t *testing.T) {
	if got := acceptFor("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Errorf("acceptFor = %q", got)
	}
}

// withRequest returns the clean handshake with request header name set to
// value and the request URI set to uri.
func withRequest(t testing.TB, uri, name, value string) *record.Handshake {
	hs := cleanHandshake(t)
	hs.URI = uri
	if name != "" {
		hs.RequestHeaders = set(hs.RequestHeaders, name, value)
	}
	return hs
}

func TestKeyReused(t *testing.T) {
	a := NewRunAudit(0)
	t0 := time.Now()
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	if got := a.Begin("s-1", withRequest(t, "/chat", "", ""), t0); got != nil {
		t.Fatalf("first session: %+v", got)
	}
	a.End("s-1", withRequest(t, "/chat", "", ""), t0.Add(time.Second))
	got := a.Begin("s-2", withRequest(t, "/chat", "", ""), t0.Add(2*time.Second))
	if len(got) != 1 || got[0].Rule != "key-reused" || got[0].Severity != record.SevWarn {
		t.Fatalf("second session: %+v", got)
	}
	if want := fmt.Sprintf("Sec-WebSocket-Key %q was already sent by session s-1", key); !strings.Contains(got[0].Detail, want) {
		t.Errorf("detail %q, want it to contain %q", got[0].Detail, want)
	}
	other := withRequest(t, "/chat", "Sec-WebSocket-Key", "x3JJHMbDL1EzLkh9GBhXDw==")
	if got := a.Begin("s-3", other, t0); got != nil {
		t.Errorf("another key: %+v", got)
	}
}

func TestTokenShared(t *testing.T) {
	const secret = "s3cr3t-opaque-token-value"
	a := NewRunAudit(3)
	t0 := time.Now()
	// The same token as a bearer token and as query values of one session
	// counts once for it.
	hs := func(i int) *record.Handshake {
		h := withRequest(t, "/chat?room=1&access_token="+secret, "Authorization", "Bearer "+secret)
		h.RequestHeaders = set(h.RequestHeaders, "Sec-WebSocket-Key", base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("key-%012d", i))))
		return h
	}
	for i := 1; i <= 3; i++ {
		if got := a.Begin(fmt.Sprint("s-", i), hs(i), t0); got != nil {
			t.Fatalf("session %d of 3: %+v", i, got)
		}
	}
	got := a.Begin("s-4", hs(4), t0)
	if len(got) != 1 || got[0].Rule != "token-shared" || got[0].Severity != record.SevWarn {
		t.Fatalf("fourth session: %+v", got)
	}
	d := got[0].Detail
	if !strings.Contains(d, "used by 4 concurrent sessions, more than 3") || !strings.Contains(d, "bearer token in Authorization (sha256:") {
		t.Errorf("detail %q", d)
	}
	if strings.Contains(d, secret) {
		t.Errorf("detail %q reveals the token", d)
	}
	// Two sessions end: the next one is the third concurrent, within bounds.
	a.End("s-1", hs(1), t0)
	a.End("s-2", hs(2), t0)
	a.End("s-2", hs(2), t0) // a second End is harmless
	if got := a.Begin("s-5", hs(5), t0); got != nil {
		t.Errorf("third concurrent session: %+v", got)
	}
	// A token-like query parameter alone is counted too.
	q := NewRunAudit(1)
	q.Begin("q-1", withRequest(t, "/chat?jwt=abc", "", ""), t0)
	got = q.Begin("q-2", withRequest(t, "/chat?jwt=abc&x=1", "Sec-WebSocket-Key", "x3JJHMbDL1EzLkh9GBhXDw=="), t0)
	if len(got) != 1 || !strings.Contains(got[0].Detail, `query parameter "jwt"`) {
		t.Errorf("query token: %+v", got)
	}
}

// TestTokenSharedConcurrent: Begin and End from many goroutines leave no
// count behind (run with -race).
func TestTokenSharedConcurrent(t *testing.T) {
	a := NewRunAudit(3)
	t0 := time.Now()
	hs := withRequest(t, "/chat?token=shared", "Authorization", "Bearer other")
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			id := fmt.Sprint("s-", i)
			a.Begin(id, hs, t0)
			a.End(id, hs, t0)
		})
	}
	wg.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.active) != 0 || len(a.sessions) != 0 {
		t.Errorf("after all sessions ended: %d credentials, %d sessions still counted", len(a.active), len(a.sessions))
	}
}

// jwt returns an unsigned JWT whose payload is claims.
func jwt(claims string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(claims)) + ".c2ln"
}

func TestTokenExpiring(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	end := start.Add(60 * time.Second)
	exp := fmt.Sprintf(`{"sub":"load-7","exp":%d}`, start.Add(56*time.Second).Unix())
	tests := []struct {
		name, uri, auth string
		want            string // detail prefix, "" for no finding
	}{
		{name: "bearer expires 4 s before the end", uri: "/chat", auth: "Bearer " + jwt(exp),
			want: "token expired 4 s before the end of the session (JWT bearer token in Authorization, sha256:"},
		{name: "query JWT", uri: "/chat?access_token=" + jwt(exp), want: "token expired 4 s before the end of the session (JWT query parameter \"access_token\""},
		{name: "fractional exp", uri: "/chat", auth: "Bearer " + jwt(fmt.Sprintf(`{"exp":%d.7}`, start.Add(59*time.Second).Unix())),
			want: "token expired 0.3 s before the end of the session"},
		{name: "expires after the end", uri: "/chat", auth: "Bearer " + jwt(fmt.Sprintf(`{"exp":%d}`, end.Add(time.Second).Unix()))},
		{name: "no exp", uri: "/chat", auth: "Bearer " + jwt(`{"sub":"x"}`)},
		{name: "exp a string", uri: "/chat", auth: "Bearer " + jwt(`{"exp":"soon"}`)},
		{name: "not a JWT", uri: "/chat?token=a.b.c", auth: "Bearer opaque"},
		{name: "Basic is not a token", uri: "/chat", auth: "Basic " + jwt(exp)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewRunAudit(3)
			hs := withRequest(t, tt.uri, "Authorization", tt.auth)
			if got := a.Begin("s-1", hs, start); got != nil {
				t.Fatalf("Begin: %+v", got)
			}
			got := a.End("s-1", hs, end)
			if tt.want == "" {
				if got != nil {
					t.Errorf("End: %+v, want none", got)
				}
				return
			}
			if len(got) != 1 || got[0].Rule != "token-expiring" || got[0].Severity != record.SevWarn {
				t.Fatalf("End: %+v", got)
			}
			if !strings.HasPrefix(got[0].Detail, tt.want) {
				t.Errorf("detail %q, want prefix %q", got[0].Detail, tt.want)
			}
		})
	}
	// A token already expired at the start says so.
	a := NewRunAudit(3)
	hs := withRequest(t, "/chat", "Authorization", "Bearer "+jwt(fmt.Sprintf(`{"exp":%d}`, start.Add(-10*time.Second).Unix())))
	a.Begin("s-1", hs, start)
	got := a.End("s-1", hs, end)
	if len(got) != 1 || !strings.Contains(got[0].Detail, "token expired 70 s before the end of the session") ||
		!strings.Contains(got[0].Detail, "already 10 s before the session started") {
		t.Errorf("expired before the start: %+v", got)
	}
}

// FuzzAudit: arbitrary header names and values, request lines and statuses
// never make an audit panic, and every finding is a known rule.
func FuzzAudit(f *testing.F) {
	f.Add("Upgrade", "websocket, foo", "GET", "HTTP/1.1", 101)
	f.Add("Sec-WebSocket-Extensions", `permessage-deflate; a="b\"c", , ;`, "GET", "HTTP/9999999999999999999.1", 101)
	f.Add("Authorization", "Bearer "+jwt(`{"exp":1e308}`), "POST", "", 401)
	f.Add("Sec-WebSocket-Protocol", "\x00\xff,\"", "", "HTTP/", 101)
	f.Add("", "?token=%zz&jwt=a.b.c", "GET", "HTTP/1.1", -1)
	f.Fuzz(func(t *testing.T, name, value, method, proto string, status int) {
		hs := cleanHandshake(t)
		hs.Method, hs.Proto, hs.Status = method, proto, status
		hs.URI = "/chat?" + value
		hs.RequestHeaders = append(hs.RequestHeaders, record.Header{Name: name, Value: value})
		hs.ResponseHeaders = append(hs.ResponseHeaders, record.Header{Name: name, Value: value})
		a := NewRunAudit(1)
		got := audit(hs)
		got = append(got, a.Begin("s-1", hs, time.Unix(0, 0))...)
		got = append(got, a.Begin("s-2", hs, time.Unix(0, 0))...)
		got = append(got, a.End("s-1", hs, time.Unix(1<<40, 0))...)
		for _, fd := range got {
			if auditRules[fd.Rule] == "" || fd.Severity != auditRules[fd.Rule] || fd.Detail == "" {
				t.Errorf("finding %+v", fd)
			}
		}
	})
}

func ExampleAuditResponse() {
	hs := &record.Handshake{
		Status:          101,
		RequestHeaders:  []record.Header{{Name: "Sec-WebSocket-Key", Value: "dGhlIHNhbXBsZSBub25jZQ=="}, {Name: "Sec-WebSocket-Protocol", Value: "chat"}},
		ResponseHeaders: []record.Header{{Name: "Upgrade", Value: "websocket"}, {Name: "Connection", Value: "Upgrade"}, {Name: "Sec-WebSocket-Accept", Value: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}, {Name: "Sec-WebSocket-Protocol", Value: "v2.chat"}},
	}
	for _, f := range AuditResponse(hs) {
		fmt.Println(f.Severity, f.Rule+":", f.Detail)
	}
	// Output:
	// error subprotocol-not-offered: the server selected Sec-WebSocket-Protocol "v2.chat", not one of the client's "chat"; the client must fail the connection (RFC 6455 §4.1)
}
