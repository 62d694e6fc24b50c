package proxy

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/rs/zerolog"
	"github.com/wstap/wstap/capture"
)

// Admission in forward mode: who may use wstap as a proxy, and to reach
// whom. Off loopback (distributed JMeter engines on other hosts) forward
// mode needs Allow or ProxyAuth, so that it never becomes an open
// intercepting proxy.

// AllowRule is one --allow entry: a host, and a port or "" for any port.
type AllowRule struct{ Host, Port string }

func (a AllowRule) String() string {
	if a.Port == "" {
		return a.Host
	}
	return net.JoinHostPort(a.Host, a.Port)
}

// ParseAllow parses HOST[:PORT][,HOST[:PORT]...]; an IPv6 address with a
// port is written in brackets ([::1]:443).
func ParseAllow(list string) ([]AllowRule, error) {
	var out []AllowRule
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		r := AllowRule{Host: strings.Trim(e, "[]")}
		if h, p, err := net.SplitHostPort(e); err == nil {
			r = AllowRule{Host: h, Port: p}
		}
		if r.Host == "" || strings.ContainsAny(r.Host, "/@ ") || (r.Port != "" && !isPort(r.Port)) {
			return nil, fmt.Errorf("%w: allow entry %q: want HOST or HOST:PORT", ErrConfig, e)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: allow list %q names no host", ErrConfig, list)
	}
	return out, nil
}

func isPort(p string) bool {
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
		if n > 65535 {
			return false
		}
	}
	return p != "" && n > 0
}

// checkAdmission is Check's part on forward mode's admission.
func (c *Config) checkAdmission() error {
	if c.Upstream != nil {
		if len(c.Allow) > 0 || c.ProxyAuth != "" {
			return fmt.Errorf("%w: Allow and ProxyAuth are for forward mode; reverse mode has one upstream", ErrConfig)
		}
		return nil
	}
	if c.ProxyAuth != "" {
		// The value is never quoted: without a colon it may be the password alone.
		if user, _, ok := strings.Cut(c.ProxyAuth, ":"); !ok || user == "" {
			return fmt.Errorf("%w: ProxyAuth: want USER:PASS (RFC 7617), got a value without a user and a colon", ErrConfig)
		}
	}
	if !LoopbackOnly(c.Listen) && len(c.Allow) == 0 && c.ProxyAuth == "" {
		return fmt.Errorf("%w: forward mode on %s, not loopback, with neither Allow nor ProxyAuth: "+
			"anyone who reaches it could use it as an open intercepting proxy", ErrConfig, c.Listen)
	}
	return nil
}

// LoopbackOnly reports whether listen (host:port; "" is the default,
// 127.0.0.1:8080) binds loopback only. A host name other than localhost
// counts as not loopback: wstap cannot tell where it will resolve.
func LoopbackOnly(listen string) bool {
	if listen == "" {
		return true
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// admit decides whether a forward-mode request outside a tunnel (a CONNECT
// or a request in absolute form) may go on. Without the right credentials
// it answers 407 (RFC 9110 §15.5.8), to a target outside Allow 403, each
// recorded as an "http" event. Proxy-Authorization is addressed to wstap
// and consumed here (RFC 9110 §11.7.1): it is not forwarded and no record
// holds it.
func (s *Server) admit(conn, raw net.Conn, h *head) bool {
	method, uri, _, _ := requestLine(h.start)
	if s.cfg.ProxyAuth != "" {
		if reason := checkProxyAuth(s.cfg.ProxyAuth, h.get("Proxy-Authorization")); reason != "" {
			s.refuse(conn, raw, 407, method, uri, reason)
			return false
		}
	}
	dropHeader(h, "Proxy-Authorization")
	if len(s.cfg.Allow) == 0 {
		return true
	}
	host, port := requestAuthority(method, uri)
	for _, a := range s.cfg.Allow {
		if strings.EqualFold(a.Host, host) && (a.Port == "" || a.Port == port) {
			return true
		}
	}
	s.refuse(conn, raw, 403, method, uri, fmt.Sprintf("target %s is not in wstap's --allow list", net.JoinHostPort(host, port)))
	return false
}

// checkProxyAuth compares the Basic credentials of value (RFC 7617) with
// want ("user:pass") in constant time; it returns why they do not admit,
// or "". The reason never quotes what the client sent.
func checkProxyAuth(want, value string) string {
	if value == "" {
		return "proxy credentials required: no Proxy-Authorization header"
	}
	scheme, cred, _ := strings.Cut(strings.TrimSpace(value), " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "proxy credentials required: Proxy-Authorization scheme is not Basic"
	}
	got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "proxy credentials required: Proxy-Authorization Basic value is not base64"
	}
	// Hashes of equal length: the comparison's time says nothing about the password.
	w, g := sha256.Sum256([]byte(want)), sha256.Sum256(got)
	if subtle.ConstantTimeCompare(w[:], g[:]) != 1 {
		return "proxy credentials required: wrong user or password in Proxy-Authorization"
	}
	return ""
}

// requestAuthority is the host and port a CONNECT or an absolute-form
// request goes to (RFC 9112 §3.2.2, §3.2.3); the port defaults by scheme.
func requestAuthority(method, uri string) (host, port string) {
	if method == "CONNECT" {
		host, port, _ = net.SplitHostPort(uri)
		return host, port
	}
	u, err := url.Parse(uri)
	if err != nil {
		return "", ""
	}
	port = u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" || u.Scheme == "wss" {
			port = "443"
		}
	}
	return u.Hostname(), port
}

// dropHeader removes every name header from h, and from the raw head that
// the capture shows, which is rendered anew when one was there.
func dropHeader(h *head, name string) {
	out := h.headers[:0]
	for _, kv := range h.headers {
		if !strings.EqualFold(kv.Name, name) {
			out = append(out, kv)
		}
	}
	if len(out) != len(h.headers) {
		h.headers = out
		h.raw = h.bytes()
	}
}

// refuse answers a request wstap itself will not carry and records it as
// an "http" event with the reason.
func (s *Server) refuse(conn, raw net.Conn, status int, method, uri, reason string) {
	s.Stats.HTTP.Add(1)
	where := uri
	if method != "CONNECT" {
		where = capture.RedactURL(uri)
	}
	s.cfg.Recorder.Event(capture.Event{Level: zerolog.WarnLevel, Name: capture.EventHTTP, Fields: []any{"method", method,
		"url", where, "status", status, "reason", reason, "by", "wstap", "client", raw.RemoteAddr().String()}})
	text, extra := "Forbidden", ""
	if status == 407 {
		text, extra = "Proxy Authentication Required", "Proxy-Authenticate: Basic realm=\"wstap\"\r\n"
	}
	body := reason + "\n"
	fmt.Fprintf(conn, "HTTP/1.1 %d %s\r\n%sContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\nX-Wstap-Error: %s\r\n\r\n%s",
		status, text, extra, len(body), reason, body)
}
