package proxy

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"github.com/gobwas/httphead"

	"github.com/wstap/wstap/capture/record"
)

// auditRules is the severity of every handshake rule, one severity per rule so
// that a run summary can count and sort by it. The rules, by RFC 6455 section:
//
//	rule                      severity  fires when
//	upgrade-token             error     the request's Upgrade lacks the token "websocket" (§4.1, §4.2.1)
//	connection-token          error     the request's Connection lacks the token "upgrade" (§4.1, §4.2.1)
//	version                   error     Sec-WebSocket-Version is missing or not 13 (§4.1, §4.2.1)
//	key-format                error     Sec-WebSocket-Key is missing or not base64 of 16 bytes (§4.1)
//	method-version            error     the request is not GET over HTTP/1.1 or later (§4.1)
//	host-missing              error     the request has no Host (§4.1, RFC 7230 §5.4)
//	duplicate-header          error     a header allowed once appears twice (§11.3.1–§11.3.5, RFC 7230 §5.4)
//	subprotocol-none-offered  info      the client offers no Sec-WebSocket-Protocol (§4.1, §11.3.4)
//	compression-offered       info      the client offers permessage-deflate: data payloads may be compressed (§9.1, RFC 7692)
//	status-not-101            error     the upstream answered something other than 101 (§4.1, §4.2.2)
//	accept-missing            error     a 101 without Sec-WebSocket-Accept (§4.1, §4.2.2)
//	accept-mismatch           error     Sec-WebSocket-Accept ≠ base64(SHA-1(key + GUID)) (§4.2.2)
//	subprotocol-not-offered   error     the server selected a protocol the client did not offer (§4.1)
//	subprotocol-ignored       warn      the client offered protocols and the server selected none (§4.2.2)
//	extension-not-offered     error     the server selected an extension the client did not offer (§4.1, §9.1)
//	response-upgrade-token    error     a 101 without Upgrade: websocket or Connection: upgrade (§4.1, §4.2.2)
//
// "error" marks what breaks the handshake for a client that follows the RFC
// (it must fail the connection, or the server must refuse it); "warn" what
// works but often explains a later failure; "info" what is worth knowing to
// read the rest of the record. The cross-session rules are in audit_tokens.go.
var auditRules = map[string]string{
	"upgrade-token":            record.SevError,
	"connection-token":         record.SevError,
	"version":                  record.SevError,
	"key-format":               record.SevError,
	"method-version":           record.SevError,
	"host-missing":             record.SevError,
	"duplicate-header":         record.SevError,
	"subprotocol-none-offered": record.SevInfo,
	"compression-offered":      record.SevInfo,
	"status-not-101":           record.SevError,
	"accept-missing":           record.SevError,
	"accept-mismatch":          record.SevError,
	"subprotocol-not-offered":  record.SevError,
	"subprotocol-ignored":      record.SevWarn,
	"extension-not-offered":    record.SevError,
	"response-upgrade-token":   record.SevError,
	"key-reused":               record.SevWarn,
	"token-shared":             record.SevWarn,
	"token-expiring":           record.SevWarn,
}

// acceptGUID is the GUID of RFC 6455 §1.3 and §4.2.2 that the server appends
// to Sec-WebSocket-Key before hashing.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// onceHeader is a header a message may carry once, and the text that says so.
type onceHeader struct{ name, cite string }

// onceInRequest are the headers a request may carry once. Upgrade is
// a list that may legally be split, but a second copy is most often a
// second header manager of the load tool, and servers disagree on it.
var onceInRequest = []onceHeader{
	{"Host", "RFC 7230 §5.4"},
	{"Upgrade", "RFC 6455 §4.1"},
	{"Origin", "RFC 6454 §7.3"},
	{"Sec-WebSocket-Key", "RFC 6455 §11.3.1"},
	{"Sec-WebSocket-Version", "RFC 6455 §11.3.5"},
}

// onceInResponse are the headers a 101 response may carry once.
var onceInResponse = []onceHeader{
	{"Upgrade", "RFC 6455 §4.2.2"},
	{"Sec-WebSocket-Accept", "RFC 6455 §11.3.3"},
	{"Sec-WebSocket-Protocol", "RFC 6455 §11.3.4"},
	{"Sec-WebSocket-Extensions", "RFC 6455 §11.3.2"},
}

// compressionExtensions are the extensions that compress data payloads.
var compressionExtensions = []string{"permessage-deflate", "x-webkit-deflate-frame", "deflate-frame"}

// AuditRequest checks a client's opening handshake against RFC 6455 §4.1 and
// §4.2.1 and returns its findings in a stable order (see auditRules for the
// rules and their severities). A Method and Proto both empty are taken as
// unknown and not checked. It never fails: malformed header values are
// findings.
func AuditRequest(hs *record.Handshake) []record.Finding {
	if hs == nil {
		return nil
	}
	var f findings
	h := hs.RequestHeaders
	f.methodVersion(hs.Method, hs.Proto)
	if v, ok := headerValue(h, "Host"); !ok || v == "" {
		f.add("host-missing", "Host header missing from the request; RFC 6455 §4.1 requires it")
	}
	f.requireToken(h, "upgrade-token", "request", "Upgrade", "websocket", "§4.2.1")
	f.requireToken(h, "connection-token", "request", "Connection", "upgrade", "§4.2.1")
	f.version(h)
	f.keyFormat(h)
	f.duplicates(h, onceInRequest, "request")
	if v, ok := headerValue(h, "Sec-WebSocket-Protocol"); !ok || v == "" {
		f.add("subprotocol-none-offered", "no Sec-WebSocket-Protocol header: the client offers no subprotocol (RFC 6455 §4.1, §11.3.4); a platform that requires one refuses or ends the session")
	}
	if v, ok := headerValue(h, "Sec-WebSocket-Extensions"); ok {
		if name := offersAny(v, compressionExtensions); name != "" {
			f.add("compression-offered", "Sec-WebSocket-Extensions %q offers %s (RFC 6455 §9.1, RFC 7692): if accepted, data payloads are compressed and only control frames can be read", v, name)
		}
	}
	return f
}

// AuditResponse checks the server's answer to the opening handshake against
// RFC 6455 §4.1 and §4.2.2. A Status of 0 means no response was read and
// yields nothing; any other status than 101 yields status-not-101 alone.
func AuditResponse(hs *record.Handshake) []record.Finding {
	if hs == nil || hs.Status == 0 {
		return nil
	}
	var f findings
	if hs.Status != http.StatusSwitchingProtocols {
		status := strings.TrimSpace(fmt.Sprintf("%d %s", hs.Status, http.StatusText(hs.Status)))
		f.add("status-not-101", "status %s, not 101 Switching Protocols: the upstream refused the upgrade (RFC 6455 §4.1, §4.2.2)", status)
		return f
	}
	req, resp := hs.RequestHeaders, hs.ResponseHeaders
	f.requireToken(resp, "response-upgrade-token", "101 response", "Upgrade", "websocket", "§4.1")
	f.requireToken(resp, "response-upgrade-token", "101 response", "Connection", "upgrade", "§4.1")
	f.accept(req, resp)
	f.subprotocol(req, resp)
	f.extensions(req, resp)
	f.duplicates(resp, onceInResponse, "101 response")
	return f
}

// findings collects the findings of one audit in order.
type findings []record.Finding

func (f *findings) add(rule, format string, a ...any) {
	*f = append(*f, record.Finding{Rule: rule, Severity: auditRules[rule], Detail: fmt.Sprintf(format, a...)})
}

// methodVersion checks the request line: "The method of the request MUST be
// GET, and the HTTP version MUST be at least 1.1" (§4.1).
func (f *findings) methodVersion(method, proto string) {
	if method == "" && proto == "" {
		return
	}
	major, minor, ok := httphead.ParseVersion([]byte(proto))
	if method == http.MethodGet && ok && (major > 1 || major == 1 && minor >= 1) {
		return
	}
	f.add("method-version", "request line method %q, version %q: RFC 6455 §4.1 requires GET over HTTP/1.1 or later", method, proto)
}

// requireToken adds rule unless the header name of the message where holds
// token in its token list.
func (f *findings) requireToken(h []record.Header, rule, where, name, token, section string) {
	v, ok := headerValue(h, name)
	switch {
	case !ok:
		f.add(rule, "%s header missing from the %s; RFC 6455 %s requires the token %q", name, where, section, token)
	case !hasToken(v, token):
		f.add(rule, "%s header %q in the %s does not contain the token %q (RFC 6455 %s)", name, v, where, token, section)
	}
}

// version checks that every Sec-WebSocket-Version value is 13 (§4.1, §4.2.1).
func (f *findings) version(h []record.Header) {
	vs := headerValues(h, "Sec-WebSocket-Version")
	if len(vs) == 0 {
		f.add("version", "Sec-WebSocket-Version header missing; RFC 6455 §4.1 requires 13")
		return
	}
	for _, v := range vs {
		if v != "13" {
			f.add("version", "Sec-WebSocket-Version header %q is not 13 (RFC 6455 §4.1, §4.2.1)", v)
			return
		}
	}
}

// keyFormat checks that every Sec-WebSocket-Key is "a randomly selected
// 16-byte value that has been base64-encoded" (§4.1).
func (f *findings) keyFormat(h []record.Header) {
	vs := headerValues(h, "Sec-WebSocket-Key")
	if len(vs) == 0 {
		f.add("key-format", "Sec-WebSocket-Key header missing; RFC 6455 §4.1 requires base64 of 16 random bytes")
		return
	}
	for _, v := range vs {
		b, err := base64.StdEncoding.DecodeString(v)
		switch {
		case err != nil:
			f.add("key-format", "Sec-WebSocket-Key header %q is not base64 of 16 bytes: not base64 (RFC 6455 §4.1)", v)
		case len(b) != 16 || len(v) != 24:
			f.add("key-format", "Sec-WebSocket-Key header %q is not base64 of 16 bytes: it decodes to %d bytes (RFC 6455 §4.1)", v, len(b))
		default:
			continue
		}
		return
	}
}

// duplicates adds one duplicate-header finding per header of once that
// appears more than once in h.
func (f *findings) duplicates(h []record.Header, once []onceHeader, where string) {
	for _, o := range once {
		vs := headerValues(h, o.name)
		if len(vs) < 2 {
			continue
		}
		quoted := make([]string, len(vs))
		for i, v := range vs {
			quoted[i] = fmt.Sprintf("%q", v)
		}
		f.add("duplicate-header", "%s header appears %d times in the %s (%s); it is allowed once (%s)", o.name, len(vs), where, strings.Join(quoted, ", "), o.cite)
	}
}

// accept checks Sec-WebSocket-Accept against the request's key (§4.2.2). A
// missing or duplicate key is the request's finding; the first one is used.
func (f *findings) accept(req, resp []record.Header) {
	got, ok := headerValue(resp, "Sec-WebSocket-Accept")
	if !ok {
		f.add("accept-missing", "101 response without Sec-WebSocket-Accept; the client must fail the connection (RFC 6455 §4.1, §4.2.2)")
		return
	}
	keys := headerValues(req, "Sec-WebSocket-Key")
	if len(keys) == 0 || keys[0] == "" {
		return
	}
	if want := acceptFor(keys[0]); got != want {
		f.add("accept-mismatch", "Sec-WebSocket-Accept header %q is not %q, base64(SHA-1(key + GUID)) of Sec-WebSocket-Key %q (RFC 6455 §4.2.2)", got, want, keys[0])
	}
}

// subprotocol checks the server's selection against the client's offer: a
// protocol "not present in the client's handshake" fails the connection
// (§4.1); an offer answered with none is legal but often not what the client
// needs (§4.2.2).
func (f *findings) subprotocol(req, resp []record.Header) {
	offered, _ := headerValue(req, "Sec-WebSocket-Protocol")
	selected, _ := headerValue(resp, "Sec-WebSocket-Protocol")
	switch {
	case selected != "" && !offersExactly(offered, selected):
		if offered == "" {
			f.add("subprotocol-not-offered", "the server selected Sec-WebSocket-Protocol %q but the client offered none; the client must fail the connection (RFC 6455 §4.1)", selected)
		} else {
			f.add("subprotocol-not-offered", "the server selected Sec-WebSocket-Protocol %q, not one of the client's %q; the client must fail the connection (RFC 6455 §4.1)", selected, offered)
		}
	case selected == "" && offered != "":
		f.add("subprotocol-ignored", "the client offered Sec-WebSocket-Protocol %q and the server selected none (RFC 6455 §4.2.2); a client that needs one fails or misreads the session", offered)
	}
}

// extensions checks that every extension of the response was offered
// (§4.1: "the client MUST _Fail the WebSocket Connection_"; §9.1).
func (f *findings) extensions(req, resp []record.Header) {
	selected, ok := headerValue(resp, "Sec-WebSocket-Extensions")
	if !ok || strings.TrimSpace(selected) == "" {
		return
	}
	offered, _ := headerValue(req, "Sec-WebSocket-Extensions")
	opts, ok := httphead.ParseOptions([]byte(selected), nil)
	if !ok {
		f.add("extension-not-offered", "Sec-WebSocket-Extensions header %q in the 101 response is not a valid extension list (RFC 6455 §9.1)", selected)
		return
	}
	for _, o := range opts {
		name := string(o.Name)
		switch {
		case offersAny(offered, []string{name}) != "":
		case offered == "":
			f.add("extension-not-offered", "the server selected extension %q (Sec-WebSocket-Extensions %q) but the client offered none; the client must fail the connection (RFC 6455 §4.1, §9.1)", name, selected)
		default:
			f.add("extension-not-offered", "the server selected extension %q (Sec-WebSocket-Extensions %q), not one of the client's %q; the client must fail the connection (RFC 6455 §4.1, §9.1)", name, selected, offered)
		}
	}
}

// acceptFor returns the Sec-WebSocket-Accept value for key (§4.2.2).
func acceptFor(key string) string {
	sum := sha1.Sum([]byte(key + acceptGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// headerValues returns the values of every header called name (ASCII case
// insensitive), trimmed, in order.
func headerValues(h []record.Header, name string) []string {
	var vs []string
	for _, x := range h {
		if strings.EqualFold(strings.TrimSpace(x.Name), name) {
			vs = append(vs, strings.TrimSpace(x.Value))
		}
	}
	return vs
}

// headerValue returns the values of name joined by ", " as one list, as RFC
// 7230 §3.2.2 allows, and whether the header was present at all.
func headerValue(h []record.Header, name string) (string, bool) {
	vs := headerValues(h, name)
	return strings.Join(vs, ", "), len(vs) > 0
}

// hasToken reports whether the token list v (1#token) holds token, ASCII
// case-insensitively. Tokens met before a malformed part of v still count.
func hasToken(v, token string) bool {
	found := false
	httphead.ScanTokens([]byte(v), func(t []byte) bool {
		found = strings.EqualFold(string(t), token)
		return !found
	})
	return found
}

// offersExactly reports whether the token list offered holds selected
// exactly: subprotocol names are compared as sent (§4.1).
func offersExactly(offered, selected string) bool {
	found := false
	httphead.ScanTokens([]byte(offered), func(t []byte) bool {
		found = string(t) == selected
		return !found
	})
	return found
}

// offersAny returns the first of names offered as an extension in v (an
// extension list of §9.1, names compared case-insensitively), or "".
func offersAny(v string, names []string) string {
	var hit string
	httphead.ScanOptions([]byte(v), func(_ int, option, _, _ []byte) httphead.Control {
		for _, n := range names {
			if strings.EqualFold(string(option), n) {
				hit = n
				return httphead.ControlBreak
			}
		}
		return httphead.ControlSkip
	})
	return hit
}
