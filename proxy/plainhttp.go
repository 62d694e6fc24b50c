package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/wstap/wstap/capture"
)

// hopHeaders are hop-by-hop (RFC 9110 §7.6.1): not forwarded.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// transports holds each Server's transport for plain requests: its TLS
// settings (--upstream-ca, --insecure-upstream, the key log) are that
// server's, not those of the first server of the process.
var transports sync.Map // *Server → *http.Transport

func (s *Server) transport() *http.Transport {
	if t, ok := transports.Load(s); ok {
		return t.(*http.Transport)
	}
	t, _ := transports.LoadOrStore(s, &http.Transport{
		Proxy:               nil,
		DialContext:         s.dialer().DialContext,
		DisableCompression:  true,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		TLSClientConfig: &tls.Config{RootCAs: s.cfg.UpstreamCAs, InsecureSkipVerify: s.cfg.InsecureUpstream,
			KeyLogWriter: s.cfg.KeyLog},
		ForceAttemptHTTP2: false,
	})
	return t.(*http.Transport)
}

// forwardHTTP forwards one plain HTTP request (a REST call of the same load
// plan) and logs method, redacted URL, status and latency. It returns false
// when the client connection must be closed.
func (s *Server) forwardHTTP(conn net.Conn, br *bufio.Reader, h *head, tgt target) bool {
	start := time.Now()
	method, uri, proto, _ := requestLine(h.start)
	u, err := url.Parse(uri)
	if err != nil {
		s.reject(conn, conn, 400, fmt.Sprintf("malformed request target %q: %v", uri, err))
		return false
	}
	if !u.IsAbs() {
		scheme := "http"
		if tgt.tls {
			scheme = "https"
		}
		u = &url.URL{Scheme: scheme, Host: hostHeader(tgt), Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	}
	var body io.Reader
	te := strings.ToLower(h.get("Transfer-Encoding"))
	switch {
	case strings.Contains(te, "chunked"):
		body = httputil.NewChunkedReader(br)
	case h.get("Content-Length") != "":
		n, err := strconv.ParseInt(h.get("Content-Length"), 10, 64)
		if err != nil || n < 0 {
			s.reject(conn, conn, 400, fmt.Sprintf("malformed Content-Length %q", h.get("Content-Length")))
			return false
		}
		body = io.LimitReader(br, n)
	}
	req, err := http.NewRequest(method, u.String(), body)
	if err != nil {
		s.reject(conn, conn, 400, fmt.Sprintf("request %s %q: %v", method, uri, err))
		return false
	}
	for _, kv := range h.headers {
		req.Header.Add(kv.Name, kv.Value)
	}
	for _, n := range hopHeaders {
		req.Header.Del(n)
	}
	req.Host = u.Host
	if s.cfg.Upstream == nil && h.get("Host") != "" {
		req.Host = h.get("Host")
	}
	if cl := h.get("Content-Length"); cl != "" {
		req.ContentLength, _ = strconv.ParseInt(cl, 10, 64)
	}
	closeAfter := strings.EqualFold(h.get("Connection"), "close") || proto == "HTTP/1.0"
	resp, err := s.transport().RoundTrip(req)
	latency := time.Since(start)
	s.Stats.HTTP.Add(1)
	redacted := capture.RedactURL(u.String())
	if err != nil {
		s.cfg.Recorder.Event(capture.Event{Level: zerolog.WarnLevel, Name: capture.EventHTTP, Fields: []any{"method", method, "url", redacted,
			"status", 502, "latency_ms", round3(ms(latency)), "error", err.Error(), "client", conn.RemoteAddr().String()}})
		body := "wstap: forwarding " + method + " " + redacted + ": " + err.Error() + "\n"
		fmt.Fprintf(conn, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
		return false
	}
	defer resp.Body.Close()
	level := zerolog.InfoLevel
	if resp.StatusCode >= 400 {
		level = zerolog.WarnLevel
	}
	s.cfg.Recorder.Event(capture.Event{Level: level, Name: capture.EventHTTP, Fields: []any{"method", method, "url", redacted,
		"status", resp.StatusCode, "latency_ms", round3(ms(latency)), "client", conn.RemoteAddr().String()}})
	if closeAfter {
		resp.Close = true
	}
	if err := resp.Write(conn); err != nil {
		return false
	}
	return !closeAfter && !resp.Close
}
