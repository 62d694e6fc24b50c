package capture

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Redacted replaces every secret wstap leaves out of bundles and HARs
// (docs/records.md, "The evidence bundle").
const Redacted = "[redacted]"

// secretParams are query parameter, JSON key and cookie-like names whose
// values are secrets wherever they appear. Names are compared lower-cased
// with '-' turned into '_'.
var secretParams = map[string]bool{
	"token": true, "access_token": true, "id_token": true, "refresh_token": true,
	"jwt": true, "key": true, "api_key": true, "apikey": true, "secret": true,
	"client_secret": true, "password": true, "passwd": true, "pwd": true,
	"auth": true, "authorization": true, "signature": true, "sig": true,
	"sessionid": true, "session_id": true, "session_token": true, "code": true,
	"credential": true, "credentials": true, "private_key": true,
}

// IsSecretName reports whether a query parameter, JSON key or header name
// names a secret: one of the well-known names above, or any name containing
// token, secret, passw, signature, credential or ending in _key / apikey
// (X-Amz-Security-Token, X-Api-Key, x_auth_token...).
func IsSecretName(name string) bool {
	n := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(name)), "-", "_")
	if n == "sec_websocket_key" {
		return false // a nonce the handshake audit needs, not a secret
	}
	if secretParams[n] {
		return true
	}
	for _, part := range []string{"token", "secret", "passw", "signature", "credential", "apikey", "api_key"} {
		if strings.Contains(n, part) {
			return true
		}
	}
	return strings.HasSuffix(n, "_key") || strings.HasPrefix(n, "x_auth")
}

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
		return RedactText(RedactURL(value))
	}
	if IsSecretName(name) {
		return Redacted
	}
	return RedactText(value)
}

// redactCredentials keeps the scheme of an Authorization value.
func redactCredentials(value string) string {
	v := strings.TrimSpace(value)
	if v == "" {
		return value
	}
	if scheme, _, ok := strings.Cut(v, " "); ok {
		return scheme + " " + Redacted
	}
	return Redacted
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
				parts[i] = " " + Redacted
			}
			continue
		}
		parts[i] = name + "=" + Redacted
	}
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return strings.Join(parts, sep)
}

// RedactURL returns s with the values of token-like query (and fragment)
// parameters replaced by [redacted], a password in the userinfo replaced,
// and JWT-shaped strings in the path replaced. Everything else, the order of
// parameters and their escaping included, is kept as it was.
func RedactURL(s string) string {
	if s == "" {
		return s
	}
	// userinfo: scheme://user:password@host
	if i := strings.Index(s, "://"); i >= 0 {
		rest := s[i+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
			if user, _, ok := strings.Cut(rest[:at], ":"); ok {
				s = s[:i+3] + user + ":" + Redacted + rest[at:]
			}
		}
	}
	base, frag, hasFrag := strings.Cut(s, "#")
	path, query, hasQuery := strings.Cut(base, "?")
	out := redactJWT(path)
	if hasQuery {
		out += "?" + redactQuery(query)
	}
	if hasFrag {
		out += "#" + redactQuery(frag)
	}
	return out
}

// redactQuery replaces the values of secret-named pairs of an
// application/x-www-form-urlencoded string, keeping the rest byte for byte.
func redactQuery(q string) string {
	pairs := strings.Split(q, "&")
	for i, p := range pairs {
		k, _, ok := strings.Cut(p, "=")
		if !ok {
			pairs[i] = redactJWT(p)
			continue
		}
		if IsSecretName(redactUnescape(k)) {
			pairs[i] = k + "=" + Redacted
			continue
		}
		pairs[i] = redactJWT(p)
	}
	return strings.Join(pairs, "&")
}

// redactUnescape undoes the percent and plus escaping of a query name, leaving
// malformed escapes as they are.
func redactUnescape(k string) string {
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '+':
			b.WriteByte(' ')
		case c == '%' && i+2 < len(k) && redactIsHex(k[i+1]) && redactIsHex(k[i+2]):
			b.WriteByte(redactUnhex(k[i+1])<<4 | redactUnhex(k[i+2]))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func redactIsHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func redactUnhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

var (
	// jwtRE matches a JWT (RFC 7519): base64url header starting {" (eyJ),
	// payload and an optional signature, separated by dots.
	jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`)
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
	return jwtRE.ReplaceAllString(s, Redacted)
}

// RedactText replaces secrets inside free text, JSON or HTML: JWT-shaped
// strings, credentials after Bearer/Basic/Digest/Negotiate, the values of
// sensitive headers written as text ("Authorization: ...", "Cookie: ..."),
// and the values of secret-named pairs (access_token=..., "password": "...").
func RedactText(s string) string {
	if s == "" {
		return s
	}
	s = redactJWT(s)
	s = headerLineRE.ReplaceAllStringFunc(s, func(m string) string {
		g := headerLineRE.FindStringSubmatch(m)
		if strings.TrimSpace(g[3]) == "" || strings.HasSuffix(g[3], Redacted) {
			return m
		}
		return g[1] + g[2] + RedactHeaderValue(g[1], g[3])
	})
	s = schemeRE.ReplaceAllStringFunc(s, func(m string) string {
		g := schemeRE.FindStringSubmatch(m)
		return g[1] + g[2] + Redacted
	})
	s = jsonPairRE.ReplaceAllStringFunc(s, func(m string) string {
		g := jsonPairRE.FindStringSubmatch(m)
		if g[3] == "" || g[3] == Redacted || !IsSecretName(g[1]) {
			return m
		}
		return `"` + g[1] + `"` + g[2] + `"` + Redacted + `"`
	})
	s = kvRE.ReplaceAllStringFunc(s, func(m string) string {
		g := kvRE.FindStringSubmatch(m)
		if strings.HasPrefix(g[2], "[redacted") || !IsSecretName(g[1]) {
			return m
		}
		return g[1] + "=" + Redacted
	})
	return s
}

// RedactHeaders redacts a header list in place.
func RedactHeaders(hs []Header) {
	for i := range hs {
		hs[i].Value = RedactHeaderValue(hs[i].Name, hs[i].Value)
	}
}

// RedactRecord removes the secrets of a session record in place: the target
// and request URI, the upgrade headers both ways, and any secret quoted in
// errors, close reasons and findings.
func RedactRecord(r *SessionRecord) {
	r.Target = RedactURL(r.Target)
	r.Handshake.URI = RedactURL(r.Handshake.URI)
	RedactHeaders(r.Handshake.RequestHeaders)
	RedactHeaders(r.Handshake.ResponseHeaders)
	r.Handshake.Subprotocol = RedactText(r.Handshake.Subprotocol)
	for _, leg := range []*TLSLeg{r.TLS.Client, r.TLS.Upstream} {
		if leg != nil {
			leg.Error = RedactText(leg.Error)
		}
	}
	for _, c := range []*CloseFrame{r.Close.Client, r.Close.Upstream} {
		if c != nil {
			c.Reason = RedactText(c.Reason)
		}
	}
	r.End.Error = RedactText(r.End.Error)
	r.Keepalive.LastAppClose = RedactText(r.Keepalive.LastAppClose)
	for i := range r.Findings {
		r.Findings[i].Detail = RedactText(r.Findings[i].Detail)
	}
}

// RedactJSONLine redacts one JSON line of events.jsonl or run.json, keeping
// the order of its members: header values (members named like a header and
// {"name","value"} pairs), URLs, secret-named members, command-line args and
// secrets in any other string. Message data ("data" and "payload" members) is
// dropped unless keepPayloads, and then only its text secrets are redacted.
func RedactJSONLine(line []byte, keepPayloads bool) ([]byte, error) {
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
			return RedactText(RedactURL(t))
		case IsSecretName(lk) && t != "":
			return Redacted
		}
		return RedactText(t)
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
				m.Value = RedactText(s)
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
			args[i], secretNext = Redacted, false
			continue
		}
		if strings.HasPrefix(s, "-") {
			name, val, hasVal := strings.Cut(strings.TrimLeft(s, "-"), "=")
			if IsSecretName(name) || redactSensitiveHeader(strings.ToLower(name)) {
				if hasVal {
					args[i] = s[:len(s)-len(val)] + Redacted
				} else {
					secretNext = true
				}
				continue
			}
		}
		args[i] = RedactText(RedactURL(s))
	}
	return args
}
