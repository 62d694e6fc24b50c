package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/proxy"
)

const version = "0.1.0"

func init() {
	register("proxy", "the proxy: reverse mode with --upstream, forward (CONNECT) mode without", runProxy)
}

// proxyOptions are the flags of 'wstap proxy' (and what the demo sets).
type proxyOptions struct {
	listen, upstream, out, caDir, upstreamCA string
	tls, insecureUpstream, pcap              bool
	pcapSnap, pcapMaxMB, maxHeaderBytes      int
	maxPerToken, expectSessions              int
	headerTimeout, latePong, noKeepalive     time.Duration
	heartbeats, appClose                     multiFlag
	metrics                                  string
	logPayloads                              bool
	maxMessageEvents                         int
	args                                     []string
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func (o *proxyOptions) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to listen on (loopback unless told otherwise)")
	fs.StringVar(&o.upstream, "upstream", "", "reverse mode: the platform, ws://host[:port] or wss://host[:port]; empty: forward mode")
	fs.BoolVar(&o.tls, "tls", false, "reverse mode: serve TLS to clients with a leaf from the local CA")
	fs.StringVar(&o.out, "out", "", "run dir (default wstap-runs/<UTC timestamp>)")
	fs.StringVar(&o.caDir, "ca-dir", "", "directory of the local CA (default $WSTAP_CA_DIR or the user config dir)")
	fs.BoolVar(&o.insecureUpstream, "insecure-upstream", false, "do not verify the upstream's certificate")
	fs.StringVar(&o.upstreamCA, "upstream-ca", "", "PEM file of CAs to trust for the upstream instead of the system roots")
	fs.BoolVar(&o.pcap, "pcap", true, "write capture.pcapng (decrypted traffic of both legs)")
	fs.IntVar(&o.pcapSnap, "pcap-snap", 0, "keep only the first N payload bytes of each data frame in the pcapng (0: all)")
	fs.IntVar(&o.pcapMaxMB, "pcap-max-mb", 0, "rotate the pcapng to capture-0002.pcapng and on at N MiB (0: never)")
	fs.IntVar(&o.maxHeaderBytes, "max-header-bytes", 64<<10, "largest request header block; larger gets 431")
	fs.DurationVar(&o.headerTimeout, "header-timeout", 30*time.Second, "time allowed for a request's headers (slow-loris)")
	fs.DurationVar(&o.latePong, "late-pong", 5*time.Second, "a client pong later than this is a late-pong finding")
	fs.DurationVar(&o.noKeepalive, "no-keepalive", 30*time.Second, "client silence before an upstream drop that is a no-keepalive finding")
	fs.IntVar(&o.maxPerToken, "max-per-token", 3, "token-shared finding when more concurrent sessions share one token")
	fs.Var(&o.heartbeats, "heartbeat", "regexp of text messages that are application heartbeats (repeatable)")
	fs.Var(&o.appClose, "app-close", "regexp of text messages that announce a close or an error (repeatable)")
	fs.IntVar(&o.expectSessions, "expect-sessions", 0, "warn at start when this host's limits cannot carry this many sessions")
	fs.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics on this address (e.g. 127.0.0.1:9464)")
	fs.BoolVar(&o.logPayloads, "log-payloads", false, "put up to 1 KiB of each message into events.jsonl (for the HAR); payloads may hold secrets")
	fs.IntVar(&o.maxMessageEvents, "max-message-events", 1000, "message events per session direction in events.jsonl (-1: none)")
}

// running is a proxy with its recording.
type running struct {
	srv    *proxy.Server
	rec    *capture.Recorder
	pcap   *capture.Pcap
	keylog *os.File
	dir    string
	stopFn []func()
	// metrics serves --metrics; nil without it.
	metrics *metrics
}

// startProxy opens the run dir and starts the proxy. Errors name the flag or
// file at fault.
func startProxy(o *proxyOptions, stderr io.Writer) (*running, error) {
	cfg := proxy.Config{Listen: o.listen, TLS: o.tls, InsecureUpstream: o.insecureUpstream,
		MaxHeaderBytes: o.maxHeaderBytes, HeaderTimeout: o.headerTimeout, LatePong: o.latePong,
		NoKeepalive: o.noKeepalive, MaxPerToken: o.maxPerToken, LogPayloads: o.logPayloads, MaxMessageEvents: o.maxMessageEvents}
	if o.upstream != "" {
		u, err := url.Parse(o.upstream)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return nil, usageErr{fmt.Sprintf("--upstream %q: want ws://host[:port] or wss://host[:port]", o.upstream)}
		}
		cfg.Upstream = u
	} else if o.tls {
		return nil, usageErr{"--tls needs --upstream (forward mode intercepts TLS inside CONNECT by itself)"}
	}
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		return nil, usageErr{fmt.Sprintf("--listen %q: %v", o.listen, err)}
	}
	for _, p := range o.heartbeats {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, usageErr{fmt.Sprintf("--heartbeat %q: %v", p, err)}
		}
		cfg.Heartbeats = append(cfg.Heartbeats, re)
	}
	for _, p := range o.appClose {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, usageErr{fmt.Sprintf("--app-close %q: %v", p, err)}
		}
		cfg.AppClose = append(cfg.AppClose, re)
	}
	if o.upstreamCA != "" {
		pem, err := os.ReadFile(o.upstreamCA)
		if err != nil {
			return nil, fmt.Errorf("--upstream-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--upstream-ca %s: no PEM certificate in it", o.upstreamCA)
		}
		cfg.UpstreamCAs = pool
	}
	if cfg.TLS || cfg.Upstream == nil {
		dir := o.caDir
		if dir == "" {
			dir = proxy.DefaultCADir()
		}
		ca, err := proxy.LoadOrCreateCA(dir)
		if err != nil {
			return nil, fmt.Errorf("--ca-dir: %w", err)
		}
		cfg.CA = ca
	}
	soft, hard, err := proxy.RaiseNofile()
	if err != nil {
		fmt.Fprintf(stderr, "wstap: could not raise the open-file limit: %v\n", err)
	}
	if o.expectSessions > 0 {
		for _, w := range expectWarnings(o.expectSessions, soft, hard) {
			fmt.Fprintf(stderr, "wstap: WARNING: %s\n", w)
		}
	}
	dir := o.out
	if dir == "" {
		dir = filepath.Join("wstap-runs", time.Now().UTC().Format("20060102T150405Z"))
	}
	host, _ := os.Hostname()
	mode := "forward"
	if cfg.Upstream != nil {
		mode = "reverse"
	}
	info := capture.RunInfo{Version: version, Args: redactArgs(o.args), Start: time.Now().UTC(), Host: host,
		GoVersion: runtime.Version(), Mode: mode, Listen: o.listen, Upstream: capture.RedactURL(o.upstream),
		Nofile: capture.NofileLimit{Soft: soft, Hard: hard}}
	rec, err := capture.OpenRecorder(dir, info, 0, stderr)
	if err != nil {
		return nil, fmt.Errorf("--out: %w", err)
	}
	r := &running{rec: rec, dir: dir}
	cfg.Recorder = rec
	var met *metrics
	if o.metrics != "" {
		met = newMetrics(rec)
		cfg.Recorder = met
	}
	if o.pcap {
		p, err := capture.OpenPcap(dir, capture.PcapOptions{SnapLen: o.pcapSnap, MaxMB: o.pcapMaxMB})
		if err != nil {
			rec.Close(time.Now())
			return nil, fmt.Errorf("--out: %w", err)
		}
		r.pcap = p
		cfg.Tap = p
		rec.PacketsDropped = p.Dropped
	}
	kl, err := os.OpenFile(filepath.Join(dir, capture.KeylogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		r.closeRecording()
		return nil, fmt.Errorf("--out: %w", err)
	}
	r.keylog = kl
	cfg.KeyLog = kl
	cfg.Log = zerolog.New(zerolog.ConsoleWriter{Out: stderr, NoColor: true, TimeFormat: "15:04:05"}).With().Timestamp().Logger()
	srv, err := proxy.Start(cfg)
	if err != nil {
		r.closeRecording()
		var ue usageErr
		if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "--") {
			return nil, usageErr{err.Error()}
		}
		return nil, err
	}
	r.srv = srv
	if met != nil {
		stop, err := met.serve(o.metrics, srv)
		if err != nil {
			r.stop()
			return nil, fmt.Errorf("--metrics: %w", err)
		}
		r.stopFn = append(r.stopFn, stop)
		r.metrics = met
		fmt.Fprintf(stderr, "wstap: Prometheus metrics on http://%s/metrics\n", met.Addr())
	}
	cfg.Log.Info().Str("listen", srv.Addr().String()).Str("mode", mode).Str("upstream", info.Upstream).
		Uint64("nofile", soft).Uint64("nofile_hard", hard).Str("run_dir", dir).Msg("wstap proxy started")
	if ip := net.ParseIP(hostOf(o.listen)); ip == nil || !ip.IsLoopback() {
		fmt.Fprintf(stderr, "wstap: WARNING: listening on %s, not loopback: anyone who can reach this address can use the proxy\n", o.listen)
	}
	return r, nil
}

func hostOf(hp string) string {
	h, _, _ := net.SplitHostPort(hp)
	if h == "localhost" {
		return "127.0.0.1"
	}
	return h
}

// stop shuts the proxy down: open sessions are recorded as proxy-shutdown,
// then every file is flushed.
func (r *running) stop() error {
	for _, f := range r.stopFn {
		f()
	}
	var err error
	if r.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = r.srv.Shutdown(ctx)
		cancel()
	}
	if e := r.closeRecording(); err == nil {
		err = e
	}
	return err
}

func (r *running) closeRecording() error {
	var err error
	if r.pcap != nil {
		err = r.pcap.Close()
	}
	if r.keylog != nil {
		r.keylog.Close()
	}
	if e := r.rec.Close(time.Now().UTC()); err == nil {
		err = e
	}
	return err
}

type usageErr struct{ msg string }

func (e usageErr) Error() string { return e.msg }

// redactArgs hides flag values that may carry secrets (URLs with tokens).
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = capture.RedactURL(a)
	}
	return out
}

func runProxy(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &proxyOptions{args: args}
	o.flags(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: wstap proxy [flags]

Examples:
  wstap proxy --upstream wss://chat.example.com --tls          clients connect to wss://127.0.0.1:8080
  wstap proxy --upstream ws://127.0.0.1:9000 --listen 127.0.0.1:8081
  wstap proxy                                                   forward mode: jmeter -H 127.0.0.1 -P 8080
  wstap proxy --upstream wss://staging.internal --upstream-ca internal-ca.pem --out run1

Stop with Ctrl-C (SIGINT) or SIGTERM: open sessions are recorded as proxy-shutdown.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "proxy", "unexpected argument %q", fs.Arg(0))
	}
	r, err := startProxy(o, stderr)
	if err != nil {
		var ue usageErr
		if errors.As(err, &ue) {
			return usageError(stderr, "proxy", "%s", ue.msg)
		}
		fmt.Fprintf(stderr, "wstap proxy: %v\n", err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	stopStatus := startStatus(r, stderr)
	s := <-sig
	signal.Stop(sig)
	stopStatus()
	fmt.Fprintf(stderr, "wstap: %s: closing open sessions and flushing %s\n", s, r.dir)
	if err := r.stop(); err != nil && !r.rec.Warned() {
		// docs/records.md, "The run dir": a signal ends the proxy with 0 after the flush; what
		// could not be recorded (a full disk) is counted in run.json and
		// warned about once.
		fmt.Fprintf(stderr, "wstap proxy: WARNING: %v\n", err)
	}
	c := r.rec.Counters()
	fmt.Fprintf(stdout, "wstap: %d sessions recorded in %s (%d with 1006); run 'wstap report %s'\n", c.Sessions, r.dir, c.Abnormal, r.dir)
	return 0
}
