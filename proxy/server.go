// Package proxy is wstap's relay: listeners in reverse and forward mode, TLS
// on both legs, the upgrade relay, the byte-exact frame relay and the session
// records with their ending verdict.
package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/record"
	"github.com/wstap/wstap/frames"
	"github.com/wstap/wstap/internal/renegtls"
)

// Recorder is what the relay reports to; capture.Recorder implements it.
// Neither method may block the relay for long.
type Recorder interface {
	Event(e capture.Event)
	Session(rec *record.Session)
}

// Config configures a Server.
type Config struct {
	// Listen is the address to listen on (default 127.0.0.1:8080).
	Listen string
	// Upstream is the platform in reverse mode (ws:// or wss://); nil means
	// forward mode (an HTTP proxy with CONNECT).
	Upstream *url.URL
	// TLS serves TLS to clients in reverse mode with a leaf from CA.
	TLS bool
	CA  *CA
	// InsecureUpstream skips verification of the upstream's certificate.
	InsecureUpstream bool
	// UpstreamCAs, when set, replaces the system roots for the upstream.
	UpstreamCAs *x509.CertPool
	// MaxHeaderBytes bounds a request head (default 64 KiB, 431 above).
	MaxHeaderBytes int
	// HeaderTimeout bounds reading a request head (default 30 s).
	HeaderTimeout time.Duration
	// DialTimeout bounds dialing the upstream and its TLS handshake (default 10 s).
	DialTimeout time.Duration
	// LatePong is the threshold of the late-pong finding (default 5 s).
	LatePong time.Duration
	// NoKeepalive is the silence of the client before a drop that gives the
	// no-keepalive finding (default 30 s).
	NoKeepalive time.Duration
	// MaxPerToken is token-shared's threshold (default 3).
	MaxPerToken int
	// Heartbeats and AppClose match text messages (--heartbeat, --app-close).
	Heartbeats []*regexp.Regexp
	AppClose   []*regexp.Regexp
	// MaxMessageEvents caps the "message" events per session direction
	// (default 1000; negative: none).
	MaxMessageEvents int
	// LogPayloads puts up to 1 KiB of each message into its event (for the
	// HAR); off by default: payloads may hold secrets.
	LogPayloads bool
	// Allow, in forward mode, limits the CONNECT and absolute-form targets
	// (403 for others); empty: any target.
	Allow []AllowRule
	// ProxyAuth, in forward mode, is "user:pass": requests without these
	// Basic credentials in Proxy-Authorization get 407. It is a secret:
	// no record, event or error message holds it.
	ProxyAuth string
	// Recorder receives events and session records (required).
	Recorder Recorder
	// Tap receives the decrypted bytes for the pcapng (nil: none).
	Tap capture.Tap
	// KeyLog receives the NSS key log of both legs (nil: none).
	KeyLog io.Writer
	// Log is the proxy's own log (accept errors, limits, status).
	Log zerolog.Logger
	// TCPKeepAlive turns TCP keep-alive on for both legs with this idle time
	// and probe interval (--tcp-keepalive); 0 leaves it off, as most load
	// clients do (transparency rule 2).
	TCPKeepAlive time.Duration
}

// keepAlive is the KeepAlive of net.Dialer and net.ListenConfig: negative
// turns it off.
func (c *Config) keepAlive() time.Duration {
	if c.TCPKeepAlive > 0 {
		return c.TCPKeepAlive
	}
	return -1
}

// listen opens the listener, with TCP keep-alive only if asked for.
func (c *Config) listen(addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: c.keepAlive()}
	return lc.Listen(context.Background(), "tcp", addr)
}

// Server is a running proxy.
type Server struct {
	cfg     Config
	lnMu    sync.Mutex
	ln      net.Listener
	addr    net.Addr
	bufPool sync.Pool
	audit   *RunAudit
	mem     memSettle

	mu       sync.Mutex
	sessions map[*wsSession]struct{}
	conns    map[net.Conn]struct{} // accepted connections not yet ended
	closing  bool
	wg       sync.WaitGroup

	// endedRelayed is what the sessions no longer in sessions relayed
	// (guarded by mu; Server.Relayed).
	endedRelayed [numDirections]Relayed

	nextID   atomic.Uint64
	active   atomic.Int64 // upgraded sessions open
	creds    credentialCounts
	Stats    Stats
	done     chan struct{}
	acceptWG sync.WaitGroup
}

// Stats are live counters for the status line and metrics.
type Stats struct {
	Opened, Active, Abnormal, Rejected, HTTP, AcceptErrors atomic.Int64
	verdictMu                                              sync.Mutex
	verdicts                                               map[record.Verdict]int64
}

// Verdicts returns a copy of the ended sessions by verdict.
func (s *Stats) Verdicts() map[record.Verdict]int64 {
	s.verdictMu.Lock()
	defer s.verdictMu.Unlock()
	m := make(map[record.Verdict]int64, len(s.verdicts))
	for k, v := range s.verdicts {
		m[k] = v
	}
	return m
}

func (s *Stats) countVerdict(v record.Verdict) {
	s.verdictMu.Lock()
	if s.verdicts == nil {
		s.verdicts = map[record.Verdict]int64{}
	}
	s.verdicts[v]++
	s.verdictMu.Unlock()
}

// ErrConfig is the error of a Config that cannot run; the errors of Check
// and Start wrap it and name the field at fault.
var ErrConfig = errors.New("invalid proxy configuration")

// Check reports what keeps c from running, before anything is opened. It
// does not ask for a Recorder, which Start needs besides.
func (c *Config) Check() error {
	if c.Upstream != nil {
		switch c.Upstream.Scheme {
		case "ws", "wss":
		default:
			return fmt.Errorf("%w: Upstream %q: scheme must be ws or wss", ErrConfig, c.Upstream.String())
		}
		if c.Upstream.Hostname() == "" {
			return fmt.Errorf("%w: Upstream %q: no host", ErrConfig, c.Upstream.String())
		}
	}
	if (c.TLS || c.Upstream == nil) && c.CA == nil {
		return fmt.Errorf("%w: TLS interception (TLS, or forward mode) needs a CA", ErrConfig)
	}
	return c.checkAdmission()
}

// defaults fills the zero fields of c.
func (c *Config) defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = 64 << 10
	}
	if c.HeaderTimeout <= 0 {
		c.HeaderTimeout = 30 * time.Second
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.LatePong <= 0 {
		c.LatePong = 5 * time.Second
	}
	if c.NoKeepalive <= 0 {
		c.NoKeepalive = 30 * time.Second
	}
	if c.MaxPerToken <= 0 {
		c.MaxPerToken = 3
	}
	if c.MaxMessageEvents == 0 {
		c.MaxMessageEvents = 1000
	}
	if c.Tap == nil {
		c.Tap = capture.NopTap{}
	}
}

// Start listens and serves in the background.
func Start(cfg Config) (*Server, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if cfg.Recorder == nil {
		return nil, fmt.Errorf("%w: no Recorder", ErrConfig)
	}
	cfg.defaults()
	ln, err := cfg.listen(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	s := &Server{cfg: cfg, ln: ln, addr: ln.Addr(), sessions: map[*wsSession]struct{}{}, conns: map[net.Conn]struct{}{}, done: make(chan struct{}),
		audit: NewRunAudit(cfg.MaxPerToken)}
	s.bufPool.New = func() any { b := make([]byte, relayBigBuffer); return &b }
	s.mem.stopped = make(chan struct{})
	s.mem.relayed = func() int64 {
		c2u, u2c := s.Relayed()
		return c2u.Bytes + u2c.Bytes
	}
	s.acceptWG.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Addr is the listening address.
func (s *Server) Addr() net.Addr { return s.addr }

// acceptLoop accepts until Shutdown. Accept errors are logged loudly and
// retried with backoff, never fatal (docs/records.md rule 7). At the open-file
// limit (EMFILE) the listener is closed, so waiting and new clients are
// refused at once instead of hanging in the backlog, with one log line that
// names the limit; established sessions are untouched. It listens again
// once sessions have ended and freed descriptors.
func (s *Server) acceptLoop() {
	defer s.acceptWG.Done()
	var backoff time.Duration
	for {
		ln := s.listener()
		c, err := ln.Accept()
		if err == nil {
			backoff = 0
			s.wg.Add(1)
			go s.serveConn(c)
			continue
		}
		select {
		case <-s.done:
			return
		default:
		}
		if errors.Is(err, net.ErrClosed) {
			return
		}
		s.Stats.AcceptErrors.Add(1)
		if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
			if !s.pauseAtLimit(ln, err) {
				return
			}
			continue
		}
		if backoff == 0 {
			backoff = 5 * time.Millisecond
		} else if backoff < time.Second {
			backoff *= 2
		}
		s.cfg.Log.Error().Err(err).Str("listen", s.addr.String()).Dur("retry_in", backoff).
			Msg("ACCEPT FAILED: new connections are not being accepted; established sessions are untouched")
		s.cfg.Recorder.Event(capture.Event{Level: zerolog.ErrorLevel, Name: capture.EventAcceptError, Fields: []any{"error", err.Error()}})
		select {
		case <-time.After(backoff):
		case <-s.done:
			return
		}
	}
}

// pauseAtLimit closes the listener at the open-file limit and listens again
// once fewer sessions are open than when the limit was hit. It returns false
// when the server is shutting down.
func (s *Server) pauseAtLimit(ln net.Listener, cause error) bool {
	open := s.active.Load()
	soft, hard, _ := NofileLimits()
	s.cfg.Log.Error().Err(cause).Str("listen", s.addr.String()).
		Msgf("ACCEPT FAILED: open-file limit reached (RLIMIT_NOFILE soft %d, hard %d) with %d sessions open; new connections are refused until sessions end; established sessions are untouched; raise the limit (see 'wstap doctor')", soft, hard, open)
	s.cfg.Recorder.Event(capture.Event{Level: zerolog.ErrorLevel, Name: capture.EventAcceptError,
		Fields: []any{"error", cause.Error(), "nofile", soft, "sessions_open", open}})
	ln.Close()
	started := time.Now()
	for {
		select {
		case <-s.done:
			return false
		case <-time.After(100 * time.Millisecond):
		}
		// Two descriptors make a session; wait for room for a few.
		if s.active.Load() > open-2 && time.Since(started) < 30*time.Second {
			continue
		}
		nl, err := s.cfg.listen(s.addr.String())
		if err != nil {
			continue
		}
		s.lnMu.Lock()
		select {
		case <-s.done:
			s.lnMu.Unlock()
			nl.Close()
			return false
		default:
		}
		s.ln = nl
		s.lnMu.Unlock()
		s.cfg.Log.Warn().Str("listen", s.addr.String()).Int64("sessions_open", s.active.Load()).Msg("accepting new connections again")
		return true
	}
}

func (s *Server) listener() net.Listener {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	return s.ln
}

func (s *Server) newID() string {
	return "s" + strconv.FormatUint(s.nextID.Add(1), 10)
}

func (s *Server) track(ss *wsSession) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.sessions[ss] = struct{}{}
	return true
}

func (s *Server) untrack(ss *wsSession) {
	s.mu.Lock()
	delete(s.sessions, ss)
	s.foldRelayed(ss)
	s.mu.Unlock()
}

// Shutdown stops accepting, ends every open session as proxy-shutdown,
// waits for every record to be written, and returns. The caller closes the
// recorder afterwards.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mem.stop()
	s.mu.Lock()
	already := s.closing
	s.closing = true
	list := make([]*wsSession, 0, len(s.sessions))
	for ss := range s.sessions {
		list = append(list, ss)
	}
	s.mu.Unlock()
	if !already {
		s.lnMu.Lock()
		close(s.done)
		s.ln.Close()
		s.lnMu.Unlock()
	}
	s.acceptWG.Wait()
	for _, ss := range list {
		ss.shutdown()
	}
	// Connections still reading a request (idle keep-alives, slow clients)
	// are not sessions: close them so Shutdown does not wait for their
	// header timeout.
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	// The upstream connections kept for plain requests, and this server's
	// transport with them.
	if t, ok := transports.LoadAndDelete(s); ok {
		t.(*http.Transport).CloseIdleConnections()
	}
	waited := make(chan struct{})
	go func() { s.wg.Wait(); close(waited) }()
	select {
	case <-waited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("shutdown: sessions still ending: %w", ctx.Err())
	}
}

// tlsConfigUpstream is the client side TLS config towards host.
func (s *Server) tlsConfigUpstream(host string) *tls.Config {
	return &tls.Config{
		ServerName:         host,
		RootCAs:            s.cfg.UpstreamCAs,
		InsecureSkipVerify: s.cfg.InsecureUpstream,
		NextProtos:         []string{"http/1.1"},
		KeyLogWriter:       s.cfg.KeyLog,
		// A TLS 1.2 upstream may renegotiate; accept it as a client would.
		Renegotiation:    tls.RenegotiateFreelyAsClient,
		CurvePreferences: curvePreferences,
		// Sessions are resumed through renegtls.Options.SessionCache: the
		// patched client refuses crypto/tls's cache.
	}
}

// upstreamSessionCache resumes upstream TLS sessions across sessions.
var upstreamSessionCache = renegtls.NewSessionCache(4096)

// curvePreferences leaves out Go's default hybrid post-quantum exchange
// (X25519MLKEM768): on both legs it cost a fifth of the handshake rate
// (0.47× → 0.58× of direct in the harness). A proxy that terminates TLS for
// a load test needs handshake speed more than forward secrecy against a
// future quantum adversary.
var curvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256}

// relayBigBuffer is the read buffer a busy relay direction borrows: 64 KiB,
// four full TLS records, which coalescer and gatherer pass on in one write
// (harness A/B, 5 interleaved rounds: proxy CPU per 16 KiB message
// 49/59/57/55/47 µs against 53/66/63/60/51 with 32 KiB, lower in each).
const relayBigBuffer = 64 << 10

// relayBuffers returns the per-direction buffers of a session.
func (s *Server) relayBuffers() *frames.Buffers {
	// 512 bytes hold a burst of small frames; an idle session keeps only
	// these two (the harness measured 72 → 65 KiB per idle wss session
	// against 2 KiB buffers).
	return &frames.Buffers{Small: make([]byte, 512), Pool: &s.bufPool}
}

// CAPool is a pool holding wstap's CA, for clients that must trust it.
func (s *Server) CAPool() *x509.CertPool {
	if s.cfg.CA == nil {
		return nil
	}
	return s.cfg.CA.Pool()
}

// trackConn registers an accepted connection until it ends; false when the
// server is shutting down.
func (s *Server) trackConn(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrackConn(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// isClosing reports whether Shutdown has begun.
func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}
