package proxy

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
)

// Fuzz targets of issue 9, item 1. Seeds live in testdata/fuzz/<Target>/ as
// well as in f.Add; .ci/fuzz.sh runs each target for a fixed time.

// FuzzReadHead feeds arbitrary bytes to readHead, requestLine and
// statusLine: never a panic, a head over max is refused, and every byte
// after the head stays in the bufio.Reader for the relay.
func FuzzReadHead(f *testing.F) {
	f.Add([]byte("GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n\x81\x85abcdhello"), 64)
	f.Add([]byte("\r\nGET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\nrest"), 1024)
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi"), 4096)
	f.Add([]byte("HTTP/1.1 2000 OK\r\n\r\n"), 100)
	f.Add([]byte("GET / HTTP/1.1\nno-colon\n\n"), 100)
	f.Add([]byte(strings.Repeat("x", 200)+"\r\n\r\n"), 50)
	f.Add([]byte(" cont\r\n"), 10)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		if max < 0 {
			max = -max
		}
		max %= 1 << 16
		br := bufio.NewReaderSize(bytes.NewReader(data), 16)
		h, err := readHead(br, max)
		rest, _ := io.ReadAll(br)
		consumed := data[:len(data)-len(rest)]
		if !bytes.Equal(rest, data[len(consumed):]) {
			t.Fatalf("bytes after the head changed")
		}
		if err != nil {
			if h != nil {
				t.Fatalf("error %v with a head", err)
			}
			return
		}
		if h.size > max || len(h.raw) != h.size {
			t.Fatalf("head of %d bytes (raw %d) accepted with max %d", h.size, len(h.raw), max)
		}
		// The head is exactly what was consumed, after leading empty lines.
		if !bytes.HasSuffix(consumed, h.raw) {
			t.Fatalf("raw head %q is not the consumed bytes %q", h.raw, consumed)
		}
		if lead := string(consumed[:len(consumed)-len(h.raw)]); strings.Trim(lead, "\r\n") != "" {
			t.Fatalf("skipped %q before the start line", lead)
		}
		if !bytes.HasSuffix(h.raw, []byte("\n\n")) && !bytes.HasSuffix(h.raw, []byte("\n\r\n")) {
			t.Fatalf("head %q does not end with a blank line", h.raw)
		}
		// A blank line (the end) appears nowhere earlier in the head.
		if i := fzBlankLine(h.raw); i != len(h.raw) {
			t.Fatalf("head %q ends at %d, not at its first blank line %d", h.raw, len(h.raw), i)
		}
		for _, kv := range h.headers {
			if kv.Name == "" || strings.ContainsAny(kv.Name, ":\r\n") {
				t.Fatalf("header name %q", kv.Name)
			}
		}
		if m, tg, p, err := requestLine(h.start); err == nil {
			if m+" "+tg+" "+p != h.start {
				t.Fatalf("request line %q split into %q %q %q", h.start, m, tg, p)
			}
		}
		if p, code, err := statusLine(h.start); err == nil {
			if !strings.HasPrefix(p, "HTTP/") || code < -99 || code > 999 {
				t.Fatalf("status line %q: %q %d", h.start, p, code)
			}
		}
		// The rendered head parses back to the same start line and headers.
		if h.start != "" && !strings.ContainsAny(h.start, "\r\n") {
			h2, err := readHead(bufio.NewReader(bytes.NewReader(h.bytes())), 1<<20)
			if err == nil && (h2.start != h.start || len(h2.headers) != len(h.headers)) {
				t.Fatalf("re-rendered head differs: %q vs %q", h2.bytes(), h.bytes())
			}
		}
	})
}

// fzBlankLine returns the offset just after the first line that is empty
// (only "\r\n" or "\n") and is not the very first line, or -1.
func fzBlankLine(b []byte) int {
	off := 0
	for first := true; off < len(b); first = false {
		i := bytes.IndexByte(b[off:], '\n')
		if i < 0 {
			return -1
		}
		line := b[off : off+i+1]
		off += i + 1
		if !first && (len(line) == 1 || (len(line) == 2 && line[0] == '\r')) {
			return off
		}
	}
	return -1
}
