package capture

import (
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
		if IsSecretParam(k) {
			pairs[i] = k + "=" + Redacted
			continue
		}
		pairs[i] = redactJWT(p)
	}
	return strings.Join(pairs, "&")
}

// IsSecretParam reports whether a query parameter name, as written in the
// query (percent- or plus-escaped), names a secret.
func IsSecretParam(k string) bool { return IsSecretName(redactUnescape(k)) }

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

// JWTPattern matches a JWT (RFC 7519): base64url header starting {" (eyJ),
// payload and an optional signature, separated by dots.
const JWTPattern = `eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`

var jwtRE = regexp.MustCompile(JWTPattern)

// redactJWT replaces JWT-shaped strings.
func redactJWT(s string) string {
	return jwtRE.ReplaceAllString(s, Redacted)
}
