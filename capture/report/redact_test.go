package report

import (
	"strings"
	"testing"

	"github.com/wstap/wstap/capture/record"
)

const testJWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJlLXNlY3JldA"

func TestRedactHeaderValue(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"Authorization", "Bearer s3cr3t-TOKEN-abc", "Bearer [redacted]"},
		{"authorization", "s3cr3t", "[redacted]"},
		{"Proxy-Authorization", "Basic dXNlcjpwYXNz", "Basic [redacted]"},
		{"Cookie", "session=abc123; theme=dark", "session=[redacted]; theme=[redacted]"},
		{"Set-Cookie", "sid=xyz; Path=/; HttpOnly", "sid=[redacted]; Path=/; HttpOnly"},
		{"X-Api-Key", "k-123", "[redacted]"},
		{"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ=="},
		{"Sec-WebSocket-Protocol", "chat, " + testJWT, "chat, [redacted]"},
		{"Referer", "https://app/x?token=abc&lang=en", "https://app/x?token=[redacted]&lang=en"},
		{"Host", "chat.example.com", "chat.example.com"},
	} {
		if got := RedactHeaderValue(c.name, c.in); got != c.want {
			t.Errorf("RedactHeaderValue(%q, %q) = %q, want %q", c.name, c.in, got, c.want)
		}
	}
}

func TestRedactText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"type":"auth","token":"tok-1","password":"p w"}`, `{"type":"auth","token":"[redacted]","password":"[redacted]"}`},
		{"sent Authorization: Bearer abc.def", "sent Authorization: Bearer [redacted]"},
		{"jwt " + testJWT + " end", "jwt [redacted] end"},
		{"GET /x?access_token=AT-1 HTTP/1.1", "GET /x?access_token=[redacted] HTTP/1.1"},
		{"header bearer%20abc", "header bearer%20[redacted]"},
		{"no secrets here: room=1", "no secrets here: room=1"},
	} {
		if got := redactText(c.in); got != c.want {
			t.Errorf("RedactText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestRedactRecord(t *testing.T) {
	r := record.Session{
		Target: "wss://h/chat?access_token=AT-9f8e7d",
		Handshake: record.Handshake{
			URI:             "/chat?access_token=AT-9f8e7d",
			RequestHeaders:  []record.Header{{Name: "Authorization", Value: "Bearer s3cr3t"}, {Name: "Cookie", Value: "sid=c00kie"}},
			ResponseHeaders: []record.Header{{Name: "Set-Cookie", Value: "sid=c00kie2; Path=/"}},
		},
		TLS:      record.TLSInfo{Client: &record.TLSLeg{Error: "bad " + testJWT}},
		Close:    record.Closes{Client: &record.CloseFrame{Code: 4001, Reason: "token " + testJWT}},
		End:      record.End{Error: "Authorization: Bearer s3cr3t"},
		Findings: []record.Finding{{Rule: "x", Detail: `header "Bearer s3cr3t" reused`}},
	}
	redactRecord(&r)
	all := strings.Join([]string{r.Target, r.Handshake.URI, r.Handshake.RequestHeaders[0].Value,
		r.Handshake.RequestHeaders[1].Value, r.Handshake.ResponseHeaders[0].Value, r.TLS.Client.Error,
		r.Close.Client.Reason, r.End.Error, r.Findings[0].Detail}, "\n")
	for _, s := range []string{"AT-9f8e7d", "s3cr3t", "c00kie", "eyJ"} {
		if strings.Contains(all, s) {
			t.Errorf("secret %q survived RedactRecord:\n%s", s, all)
		}
	}
	if r.Handshake.RequestHeaders[0].Value != "Bearer [redacted]" {
		t.Errorf("Authorization = %q, want the scheme kept", r.Handshake.RequestHeaders[0].Value)
	}
}

func TestRedactJSONLine(t *testing.T) {
	in := `{"time":"2026-01-02T03:04:05Z","level":"info","session":"s1","event":"message","dir":"client_to_upstream","opcode":1,"len":12,"data":"secret text",` +
		`"headers":{"Authorization":["Bearer s3cr3t"]},"request_headers":[{"name":"Cookie","value":"a=b1"}],"url":"/x?token=t0k","big":12345678901234567890}`
	got, err := redactJSONLine([]byte(in), false)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"time":"2026-01-02T03:04:05Z","level":"info","session":"s1","event":"message","dir":"client_to_upstream","opcode":1,"len":12,` +
		`"headers":{"Authorization":["Bearer [redacted]"]},"request_headers":[{"name":"Cookie","value":"a=[redacted]"}],"url":"/x?token=[redacted]","big":12345678901234567890}`
	if string(got) != want {
		t.Errorf("RedactJSONLine =\n%s\nwant\n%s", got, want)
	}
	kept, err := redactJSONLine([]byte(`{"data":"hello `+testJWT+`"}`), true)
	if err != nil {
		t.Fatal(err)
	}
	if string(kept) != `{"data":"hello [redacted]"}` {
		t.Errorf("with payloads: %s", kept)
	}
	args, err := redactJSONLine([]byte(`{"args":["proxy","--token","T1","--password=P1","--upstream","wss://h/?key=K1"]}`), false)
	if err != nil {
		t.Fatal(err)
	}
	if string(args) != `{"args":["proxy","--token","[redacted]","--password=[redacted]","--upstream","wss://h/?key=[redacted]"]}` {
		t.Errorf("args: %s", args)
	}
	if _, err := redactJSONLine([]byte(`{"a":1} x`), false); err == nil {
		t.Error("trailing garbage accepted")
	}
}
