package proxy

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/record"
)

// DefaultMaxPerToken is how many concurrent sessions may share a credential
// before token-shared fires: platforms often close the surplus sessions of a
// token, and 3 is the default of the issue that introduced the rule.
const DefaultMaxPerToken = 3

// RunAudit holds the cross-session rules of one run (severities in
// auditRules):
//
//	rule            severity  fires when
//	key-reused      warn      a Sec-WebSocket-Key already sent by another session of the run (§4.1, §10.3 want a fresh random key)
//	token-shared    warn      a bearer token or token-like query value held by more than maxPerToken concurrent sessions
//	token-expiring  warn      a JWT (Authorization or query) whose exp falls before the session's end
//
// It keeps SHA-256 digests of keys and credentials, never the values. Its
// methods are safe for concurrent use by many session goroutines.
type RunAudit struct {
	maxPerToken int

	mu       sync.Mutex
	keys     map[digest]string  // Sec-WebSocket-Key → first session that sent it
	active   map[digest]int     // credential → sessions between Begin and End
	sessions map[string]session // session id → what End must release
}

// digest is the SHA-256 of a key or credential.
type digest [sha256.Size]byte

// short is the digest as it may appear in a finding: a prefix that names a
// credential without revealing it.
func (d digest) short() string { return "sha256:" + hex.EncodeToString(d[:4]) }

// session is what RunAudit remembers of an open session.
type session struct {
	start time.Time
	held  []digest
}

// credential is a bearer token or a token-like query value of a request.
type credential struct {
	where string // "bearer token in Authorization", `query parameter "token"`
	raw   string
	sum   digest
}

// NewRunAudit returns the audit of one run; maxPerToken below 1 means
// DefaultMaxPerToken.
func NewRunAudit(maxPerToken int) *RunAudit {
	if maxPerToken < 1 {
		maxPerToken = DefaultMaxPerToken
	}
	return &RunAudit{
		maxPerToken: maxPerToken,
		keys:        make(map[digest]string),
		active:      make(map[digest]int),
		sessions:    make(map[string]session),
	}
}

// Begin registers session id when its upgrade request arrives and returns
// its key-reused and token-shared findings. Call End exactly once for every
// Begin, whatever the outcome, or the concurrency counts stay high.
func (a *RunAudit) Begin(id string, hs *record.Handshake, start time.Time) []record.Finding {
	if hs == nil {
		return nil
	}
	creds := credentials(hs)
	keys := headerValues(hs.RequestHeaders, "Sec-WebSocket-Key")

	a.mu.Lock()
	defer a.mu.Unlock()
	var f findings
	if len(keys) > 0 && keys[0] != "" {
		k := sha256.Sum256([]byte(keys[0]))
		if first, ok := a.keys[k]; !ok {
			a.keys[k] = id
		} else if first != id {
			f.add("key-reused", "Sec-WebSocket-Key %q was already sent by session %s; RFC 6455 §4.1 requires a new random key for every connection", keys[0], first)
		}
	}
	a.release(id)
	s := session{start: start}
	for _, c := range creds {
		a.active[c.sum]++
		s.held = append(s.held, c.sum)
		if n := a.active[c.sum]; n > a.maxPerToken {
			f.add("token-shared", "%s (%s) is used by %d concurrent sessions, more than %d: platforms often close the surplus sessions of a token", c.where, c.sum.short(), n, a.maxPerToken)
		}
	}
	a.sessions[id] = s
	return f
}

// End releases session id, which ended at end, and returns its
// token-expiring findings. A session that never had Begin only gets those.
func (a *RunAudit) End(id string, hs *record.Handshake, end time.Time) []record.Finding {
	a.mu.Lock()
	s, begun := a.sessions[id]
	a.release(id)
	a.mu.Unlock()
	if hs == nil {
		return nil
	}
	var f findings
	for _, c := range credentials(hs) {
		exp, ok := jwtExpiry(c.raw)
		if !ok || !exp.Before(end) {
			continue
		}
		detail := fmt.Sprintf("token expired %s s before the end of the session (JWT %s, %s, exp %s", seconds(end.Sub(exp)), c.where, c.sum.short(), exp.UTC().Format(time.RFC3339))
		if begun && exp.Before(s.start) {
			detail += fmt.Sprintf(", already %s s before the session started", seconds(s.start.Sub(exp)))
		} else if begun {
			detail += fmt.Sprintf(", %s s after the session started", seconds(exp.Sub(s.start)))
		}
		f.add("token-expiring", "%s)", detail)
	}
	return f
}

// release forgets session id and gives back the credentials it held; a.mu
// must be held.
func (a *RunAudit) release(id string) {
	s, ok := a.sessions[id]
	if !ok {
		return
	}
	for _, d := range s.held {
		if a.active[d]--; a.active[d] <= 0 {
			delete(a.active, d)
		}
	}
	delete(a.sessions, id)
}

// credentials returns the distinct credentials of a request: the token of
// an Authorization header with a bearer-like scheme (or no scheme), then
// the values of token-like query parameters of the request URI (the names
// capture.IsSecretName redacts).
func credentials(hs *record.Handshake) []credential {
	var out []credential
	seen := map[digest]bool{}
	add := func(where, raw string) {
		if raw == "" {
			return
		}
		sum := digest(sha256.Sum256([]byte(raw)))
		if !seen[sum] {
			seen[sum] = true
			out = append(out, credential{where: where, raw: raw, sum: sum})
		}
	}
	for _, v := range headerValues(hs.RequestHeaders, "Authorization") {
		scheme, token, found := strings.Cut(v, " ")
		switch {
		case !found:
			add("token in Authorization", scheme)
		case strings.EqualFold(scheme, "Bearer"), strings.EqualFold(scheme, "Token"), strings.EqualFold(scheme, "JWT"):
			add("bearer token in Authorization", strings.TrimSpace(token))
		}
	}
	_, query, _ := strings.Cut(hs.URI, "?")
	query, _, _ = strings.Cut(query, "#")
	params, _ := url.ParseQuery(query) // what parses is enough
	names := make([]string, 0, len(params))
	for name := range params {
		if capture.IsSecretName(name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		for _, v := range params[name] {
			add(fmt.Sprintf("query parameter %q", name), v)
		}
	}
	return out
}

// jwtExpiry returns the exp claim of s when s is a JWT (RFC 7519): three
// base64url parts whose second is a JSON object with a numeric exp.
func jwtExpiry(s string) (time.Time, bool) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *float64 `json:"exp"`
	}
	// NumericDate beyond year 9999 is not a real expiry.
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == nil || *claims.Exp < 0 || *claims.Exp > 253402300799 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(*claims.Exp)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// seconds formats d in seconds with at most one decimal: "4", "0.3".
func seconds(d time.Duration) string {
	return strconv.FormatFloat(math.Round(d.Seconds()*10)/10, 'f', -1, 64)
}
