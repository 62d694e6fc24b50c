package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"
	"sync"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/record"
)

// credentialID names the credential an upgrade request carried
// (docs/records.md, "credential"): "sha256:" and the first 8 hex digits of
// the SHA-256 of the Authorization value, else of the first token-like
// query parameter value (capture.IsSecretName), else of the Cookie header;
// nil when it carried none. A plain hash, no key: the same credential gives
// the same id across runs and proxies, so a report can count one token's
// sessions on every proxy. The credential itself is never kept.
func credentialID(headers []record.Header, uri string) *string {
	raw := firstHeader(headers, "Authorization")
	if raw == "" {
		raw = firstSecretParam(uri)
	}
	if raw == "" {
		raw = firstHeader(headers, "Cookie")
	}
	if raw == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(raw))
	id := "sha256:" + hex.EncodeToString(sum[:4])
	return &id
}

// firstHeader is the value of the first header called name, trimmed.
func firstHeader(headers []record.Header, name string) string {
	if vs := headerValues(headers, name); len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// firstSecretParam is the value of the first non-empty token-like query
// parameter of uri, in the order of the request line, unescaped.
func firstSecretParam(uri string) string {
	_, query, ok := strings.Cut(uri, "?")
	if !ok {
		return ""
	}
	query, _, _ = strings.Cut(query, "#")
	for _, pair := range strings.Split(query, "&") {
		name, value, _ := strings.Cut(pair, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		if value == "" || !capture.IsSecretName(name) {
			continue
		}
		if v, err := url.QueryUnescape(value); err == nil {
			value = v
		}
		return value
	}
	return ""
}

// credentialCounts counts the upgraded sessions open per credential id.
type credentialCounts struct {
	mu   sync.Mutex
	open map[string]int
}

// opened counts one more upgraded session with id open and returns how many
// are open now, itself included; 0 for no credential.
func (c *credentialCounts) opened(id *string) int {
	if id == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open == nil {
		c.open = map[string]int{}
	}
	c.open[*id]++
	return c.open[*id]
}

// now is how many upgraded sessions with id are open; 0 for no credential.
func (c *credentialCounts) now(id *string) int {
	if id == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open[*id]
}

// closed counts an upgraded session with id as ended.
func (c *credentialCounts) closed(id *string) {
	if id == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[*id]--; c.open[*id] <= 0 {
		delete(c.open, *id)
	}
}
