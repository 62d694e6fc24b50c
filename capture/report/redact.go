package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/record"
)

// RedactHeaderValue returns the value of header name with its secret parts
// replaced: the credentials of Authorization and Proxy-Authorization (the
// scheme is kept: "Bearer [redacted]"), every cookie value of Cookie
// ("session=[redacted]; theme=[redacted]"), the cookie value of Set-Cookie
// (its attributes are kept), the whole value of headers whose name is
// secret-like (X-Api-Key, X-Auth-Token), token-like query values of
// URL-valued headers, and JWT-shaped strings and bearer tokens anywhere.
func RedactHeaderValue(name, value string) string {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "authorization", "proxy-authorization":
		return redactCredentials(value)
	case "cookie":
		return redactCookies(value, "; ", false)
	case "set-cookie":
		return redactCookies(value, "; ", true)
	case "location", "referer", "origin", "content-location", "link":
		return redactText(capture.RedactURL(value))
	}
	if capture.IsSecretName(name) {
		return capture.Redacted
	}
	return redactText(value)
}

// redactCredentials keeps the scheme of an Authorization value.
func redactCredentials(value string) string {
	v := strings.TrimSpace(value)
	if v == "" {
		return value
	}
	if scheme, _, ok := strings.Cut(v, " "); ok {
		return scheme + " " + capture.Redacted
	}
	return capture.Redacted
}

// redactCookies replaces the value of every name=value pair of a Cookie
// header, or only the first pair (the cookie itself) of a Set-Cookie header.
func redactCookies(value, sep string, first bool) string {
	parts := strings.Split(value, ";")
	for i, p := range parts {
		if first && i > 0 {
			break
		}
		name, _, ok := strings.Cut(p, "=")
		if !ok {
			if strings.TrimSpace(p) != "" && !first {
				parts[i] = " " + capture.Redacted
			}
			continue
		}
		parts[i] = name + "=" + capture.Redacted
	}
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return strings.Join(parts, sep)
}

var (
	// jwtRE matches a JWT (RFC 7519).
	jwtRE = regexp.MustCompile(capture.JWTPattern)
	// schemeRE matches credentials after an HTTP authentication scheme
	// (RFC 9110 section 11.4), also URL-encoded.
	schemeRE = regexp.MustCompile(`(?i)\b(bearer|basic|digest|negotiate)(\s+|%20|\+)([A-Za-z0-9\-._~+/%]+=*)`)
	// headerLineRE matches a sensitive header written as text ("Cookie: a=b").
	headerLineRE = regexp.MustCompile(`(?im)\b(authorization|proxy-authorization|cookie|set-cookie)(\s*:\s*)([^\r\n"]*)`)
	// kvRE matches name=value pairs in free text (query strings, forms).
	kvRE = regexp.MustCompile(`([A-Za-z0-9_.\-]+)=([^&\s"'<>;,\\]+)`)
	// jsonPairRE matches "name": "value" members of JSON text.
	jsonPairRE = regexp.MustCompile(`"([A-Za-z0-9_.\-]+)"(\s*:\s*)"((?:[^"\\]|\\.)*)"`)
)

// redactJWT replaces JWT-shaped strings.
func redactJWT(s string) string {
	return jwtRE.ReplaceAllString(s, capture.Redacted)
}

// redactText replaces secrets inside free text, JSON or HTML: JWT-shaped
// strings, credentials after Bearer/Basic/Digest/Negotiate, the values of
// sensitive headers written as text ("Authorization: ...", "Cookie: ..."),
// and the values of secret-named pairs (access_token=..., "password": "...").
func redactText(s string) string {
	if s == "" {
		return s
	}
	s = redactJWT(s)
	s = headerLineRE.ReplaceAllStringFunc(s, func(m string) string {
		g := headerLineRE.FindStringSubmatch(m)
		if strings.TrimSpace(g[3]) == "" || strings.HasSuffix(g[3], capture.Redacted) {
			return m
		}
		return g[1] + g[2] + RedactHeaderValue(g[1], g[3])
	})
	s = schemeRE.ReplaceAllStringFunc(s, func(m string) string {
		g := schemeRE.FindStringSubmatch(m)
		return g[1] + g[2] + capture.Redacted
	})
	s = jsonPairRE.ReplaceAllStringFunc(s, func(m string) string {
		g := jsonPairRE.FindStringSubmatch(m)
		if g[3] == "" || g[3] == capture.Redacted || !capture.IsSecretName(g[1]) {
			return m
		}
		return `"` + g[1] + `"` + g[2] + `"` + capture.Redacted + `"`
	})
	s = kvRE.ReplaceAllStringFunc(s, func(m string) string {
		g := kvRE.FindStringSubmatch(m)
		if strings.HasPrefix(g[2], "[redacted") || !capture.IsSecretName(g[1]) {
			return m
		}
		return g[1] + "=" + capture.Redacted
	})
	return s
}

// redactHeaders redacts a header list in place.
func redactHeaders(hs []record.Header) {
	for i := range hs {
		hs[i].Value = RedactHeaderValue(hs[i].Name, hs[i].Value)
	}
}

// redactRecord removes the secrets of a session record in place: the target
// and request URI, the upgrade headers both ways, and any secret quoted in
// errors, close reasons and findings.
func redactRecord(r *record.Session) {
	r.Target = capture.RedactURL(r.Target)
	r.Handshake.URI = capture.RedactURL(r.Handshake.URI)
	redactHeaders(r.Handshake.RequestHeaders)
	redactHeaders(r.Handshake.ResponseHeaders)
	r.Handshake.Subprotocol = redactText(r.Handshake.Subprotocol)
	for _, leg := range []*record.TLSLeg{r.TLS.Client, r.TLS.Upstream} {
		if leg != nil {
			leg.Error = redactText(leg.Error)
		}
	}
	for _, c := range []*record.CloseFrame{r.Close.Client, r.Close.Upstream} {
		if c != nil {
			c.Reason = redactText(c.Reason)
		}
	}
	r.End.Error = redactText(r.End.Error)
	r.Keepalive.LastAppClose = redactText(r.Keepalive.LastAppClose)
	for i := range r.Findings {
		r.Findings[i].Detail = redactText(r.Findings[i].Detail)
	}
}

// redactJSONLine redacts one JSON line of events.jsonl or run.json, keeping
// the order of its members: header values (members named like a header and
// {"name","value"} pairs), URLs, secret-named members, command-line args and
// secrets in any other string. Message data ("data" and "payload" members) is
// dropped unless keepPayloads, and then only its text secrets are redacted.
func redactJSONLine(line []byte, keepPayloads bool) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	v, err := redactDecode(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON value")
	}
	v = redactJSON("", v, keepPayloads)
	var buf bytes.Buffer
	if err := redactEncode(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// redactMember is one member of a JSON object; redactObj keeps their order.
type redactMember struct {
	Key   string
	Value any
}

type redactObj []redactMember

// redactDecode reads one JSON value: redactObj, []any, string,
// json.Number, bool or nil.
func redactDecode(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	switch d {
	case '{':
		obj := redactObj{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := redactDecode(dec)
			if err != nil {
				return nil, err
			}
			obj = append(obj, redactMember{Key: k.(string), Value: v})
		}
		_, err = dec.Token()
		return obj, err
	case '[':
		arr := []any{}
		for dec.More() {
			v, err := redactDecode(dec)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err = dec.Token()
		return arr, err
	}
	return nil, fmt.Errorf("unexpected %v", d)
}

// redactEncode writes what redactDecode read, compactly.
func redactEncode(buf *bytes.Buffer, v any) error {
	switch t := v.(type) {
	case redactObj:
		buf.WriteByte('{')
		for i, m := range t {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := redactEncodeScalar(buf, m.Key); err != nil {
				return err
			}
			buf.WriteByte(':')
			if err := redactEncode(buf, m.Value); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := redactEncode(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	default:
		return redactEncodeScalar(buf, t)
	}
	return nil
}

func redactEncodeScalar(buf *bytes.Buffer, v any) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	buf.Truncate(buf.Len() - 1) // Encode's newline
	return nil
}

// redactURLKeys name members that hold a URL.
var redactURLKeys = map[string]bool{"url": true, "target": true, "uri": true, "location": true,
	"referer": true, "origin": true, "request_uri": true, "path": true, "upstream": true}

// redactJSON redacts v, the value of the member named key.
func redactJSON(key string, v any, keepPayloads bool) any {
	lk := strings.ToLower(key)
	switch t := v.(type) {
	case string:
		switch {
		case redactSensitiveHeader(lk):
			return RedactHeaderValue(key, t)
		case redactURLKeys[lk]:
			return redactText(capture.RedactURL(t))
		case capture.IsSecretName(lk) && t != "":
			return capture.Redacted
		}
		return redactText(t)
	case []any:
		if lk == "args" {
			return redactArgs(t)
		}
		for i := range t {
			t[i] = redactJSON(key, t[i], keepPayloads)
		}
		return t
	case redactObj:
		return redactMembers(lk, t, keepPayloads)
	}
	return v
}

// redactObject redacts the members of an object; members of an object named
// like "headers" are header values.
func redactMembers(key string, obj redactObj, keepPayloads bool) redactObj {
	var name string
	for _, m := range obj {
		if m.Key == "name" {
			name, _ = m.Value.(string)
		}
	}
	headers := strings.Contains(key, "headers")
	out := obj[:0]
	for _, m := range obj {
		lk := strings.ToLower(m.Key)
		switch {
		case (lk == "data" || lk == "payload") && !keepPayloads:
			continue
		case lk == "data" || lk == "payload":
			if s, ok := m.Value.(string); ok {
				m.Value = redactText(s)
			}
		case lk == "value" && name != "":
			if s, ok := m.Value.(string); ok {
				m.Value = RedactHeaderValue(name, s)
			} else {
				m.Value = redactJSON(m.Key, m.Value, keepPayloads)
			}
		case headers:
			m.Value = redactHeaderJSON(m.Key, m.Value)
		default:
			m.Value = redactJSON(m.Key, m.Value, keepPayloads)
		}
		out = append(out, m)
	}
	return out
}

// redactHeaderJSON redacts a header map's value: a string or a list of them.
func redactHeaderJSON(name string, v any) any {
	switch t := v.(type) {
	case string:
		return RedactHeaderValue(name, t)
	case []any:
		for i := range t {
			t[i] = redactHeaderJSON(name, t[i])
		}
		return t
	}
	return redactJSON(name, v, false)
}

func redactSensitiveHeader(lk string) bool {
	switch lk {
	case "authorization", "proxy-authorization", "proxy_authorization", "cookie", "set-cookie", "set_cookie":
		return true
	}
	return false
}

// redactArgs redacts a command line: the value of a flag named like a
// secret (--token X, --password=X), header flags, URLs and text secrets.
func redactArgs(args []any) []any {
	secretNext := false
	for i, a := range args {
		s, ok := a.(string)
		if !ok {
			continue
		}
		if secretNext {
			args[i], secretNext = capture.Redacted, false
			continue
		}
		if strings.HasPrefix(s, "-") {
			name, val, hasVal := strings.Cut(strings.TrimLeft(s, "-"), "=")
			if capture.IsSecretName(name) || redactSensitiveHeader(strings.ToLower(name)) {
				if hasVal {
					args[i] = s[:len(s)-len(val)] + capture.Redacted
				} else {
					secretNext = true
				}
				continue
			}
		}
		args[i] = redactText(capture.RedactURL(s))
	}
	return args
}
