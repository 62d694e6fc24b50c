package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/wstap/wstap/capture/record"
)

// head is an HTTP/1.x request or response head exactly as it travelled: the
// start line and the header lines, in order, names as sent (RFC 9112 §2.1).
type head struct {
	start   string
	headers []record.Header
	// size is the number of wire bytes of the head, blank line included.
	size int
	// raw is the head exactly as read.
	raw []byte
}

// Errors of reading a head; the proxy answers them itself.
var (
	errHeadTooLarge  = errors.New("header block larger than the maximum")
	errHeadMalformed = errors.New("malformed header line")
	// errHeadCut: the connection ended or timed out inside a head, after
	// some of its bytes; it wraps the read error.
	errHeadCut = errors.New("head cut")
)

// readHead reads one head from br, at most max bytes. It reads line by line
// through br, so bytes that came after the blank line stay buffered in br
// for the relay (the reason wstap does not use ws.Upgrader).
func readHead(br *bufio.Reader, max int) (*head, error) {
	h := &head{}
	for {
		line, err := br.ReadSlice('\n')
		h.size += len(line)
		if h.size > max {
			return nil, errHeadTooLarge
		}
		if err == bufio.ErrBufferFull {
			// A line longer than the reader's buffer: gather it.
			full := append([]byte(nil), line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				h.size += len(line)
				if h.size > max {
					return nil, errHeadTooLarge
				}
				full = append(full, line...)
			}
			line = full
		}
		if err != nil {
			if h.size == 0 {
				return nil, err
			}
			return nil, fmt.Errorf("%w after %d bytes: %w", errHeadCut, h.size, err)
		}
		h.raw = append(h.raw, line...)
		// A line ends with LF, optionally after one CR (RFC 9112 §2.2); only
		// "\r\n" or "\n" alone is the blank line that ends the head.
		s := strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r")
		if h.start == "" {
			if s == "" && len(h.headers) == 0 && h.size <= 2 {
				// RFC 9112 §2.2: ignore a CRLF before the request line.
				h.size, h.raw = 0, h.raw[:0]
				continue
			}
			h.start = s
			continue
		}
		if s == "" {
			return h, nil
		}
		if s[0] == ' ' || s[0] == '\t' {
			// Obsolete line folding (RFC 9112 §5.2): keep it with the previous header.
			if len(h.headers) == 0 {
				return nil, fmt.Errorf("%w: continuation line %q before any header", errHeadMalformed, s)
			}
			h.headers[len(h.headers)-1].Value += " " + strings.TrimSpace(s)
			continue
		}
		i := strings.IndexByte(s, ':')
		if i <= 0 {
			return nil, fmt.Errorf("%w: %q has no colon", errHeadMalformed, s)
		}
		if !isToken(s[:i]) {
			// RFC 9112 §5.1: a field name is a token, with no whitespace
			// before the colon.
			return nil, fmt.Errorf("%w: field name %q is not a token", errHeadMalformed, s[:i])
		}
		h.headers = append(h.headers, record.Header{Name: s[:i], Value: strings.TrimSpace(s[i+1:])})
	}
}

// get returns the first value of a header, case-insensitively.
func (h *head) get(name string) string {
	for _, kv := range h.headers {
		if strings.EqualFold(kv.Name, name) {
			return kv.Value
		}
	}
	return ""
}

// set replaces every value of name by one, or appends it.
func (h *head) set(name, value string) {
	out := h.headers[:0]
	done := false
	for _, kv := range h.headers {
		if strings.EqualFold(kv.Name, name) {
			if done {
				continue
			}
			kv.Value, done = value, true
		}
		out = append(out, kv)
	}
	h.headers = out
	if !done {
		h.headers = append(h.headers, record.Header{Name: name, Value: value})
	}
}

// bytes renders the head for the wire.
func (h *head) bytes() []byte {
	var b bytes.Buffer
	b.WriteString(h.start)
	b.WriteString("\r\n")
	for _, kv := range h.headers {
		b.WriteString(kv.Name)
		b.WriteString(": ")
		b.WriteString(kv.Value)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// requestLine splits a request line into method, target and version
// (RFC 9112 §3).
func requestLine(s string) (method, target, proto string, err error) {
	parts := strings.Split(s, " ")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || !strings.HasPrefix(parts[2], "HTTP/") {
		return "", "", "", fmt.Errorf("malformed request line %q: want METHOD SP TARGET SP HTTP/x.y", s)
	}
	if !isToken(parts[0]) {
		return "", "", "", fmt.Errorf("malformed request line %q: method %q is not a token", s, parts[0])
	}
	return parts[0], parts[1], parts[2], nil
}

// statusLine parses a status line (RFC 9112 §4).
func statusLine(s string) (proto string, code int, err error) {
	parts := strings.SplitN(s, " ", 3)
	if len(parts) < 2 || !strings.HasPrefix(parts[0], "HTTP/") || len(parts[1]) != 3 {
		return "", 0, fmt.Errorf("malformed status line %q", s)
	}
	code, err = strconv.Atoi(parts[1])
	if err != nil {
		return "", 0, fmt.Errorf("malformed status code in %q", s)
	}
	return parts[0], code, nil
}

// isWebSocket reports whether a request is a WebSocket session for the
// records: any Upgrade header or any Sec-WebSocket-* header (docs/records.md,
// "What is a session").
func (h *head) isWebSocket() bool {
	for _, kv := range h.headers {
		n := strings.ToLower(kv.Name)
		if n == "upgrade" || strings.HasPrefix(n, "sec-websocket-") {
			return true
		}
	}
	return false
}

// isToken reports whether s is an RFC 9110 §5.6.2 token: one or more
// tchar, visible ASCII other than the delimiters.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}
