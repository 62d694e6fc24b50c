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
	tcpKeepalive                             time.Duration
	heartbeats, appClose                     multiFlag
	metrics, pcapLegs                        string
	allow                                    multiFlag
	proxyAuth                                string
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
	fs.BoolVar(&o.pcap, "pcap", true, "write capture.pcapng (the decrypted traffic)")
	fs.StringVar(&o.pcapLegs, "pcap-legs", "one", "one: each session as one TCP conversation, client to upstream, each byte once; both: each leg as a conversation of its own")
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
	fs.Var(&o.allow, "allow", "forward mode: the only targets allowed, `HOST[:PORT][,...]` (others get 403); repeatable")
	fs.StringVar(&o.proxyAuth, "proxy-auth", "", "forward mode: require Proxy-Authorization Basic with `USER:PASS`, or @FILE holding USER:PASS (kept out of ps); others get 407")
	fs.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics on this address (e.g. 127.0.0.1:9464)")
	fs.BoolVar(&o.logPayloads, "log-payloads", false, "put up to 1 KiB of each message into events.jsonl (for the HAR); payloads may hold secrets")
	fs.IntVar(&o.maxMessageEvents, "max-message-events", 1000, "message events per session direction in events.jsonl (-1: none)")
	fs.DurationVar(&o.tcpKeepalive, "tcp-keepalive", 0, "TCP keep-alive on both legs with this idle time and probe interval, for clients that use it (0: off, as most load clients)")
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
	nofile  capture.NofileLimit
}

// startProxy builds and checks the whole configuration (refusing bad or
// conflicting flags before anything starts), then opens the run dir, then
// starts the proxy. Errors name the flag or file at fault; a usageErr is the
// user's to fix.
func startProxy(o *proxyOptions, stderr io.Writer) (*running, error) {
	cfg, err := o.config()
	if err != nil {
		return nil, err
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
	r, err := openRun(o, &cfg, capture.NofileLimit{Soft: soft, Hard: hard}, stderr)
	if err != nil {
		return nil, err
	}
	if err := r.start(o, cfg, stderr); err != nil {
		return nil, err
	}
	return r, nil
}

// check refuses flags that are malformed or conflict, before any file is read.
func (o *proxyOptions) check() error {
	if o.upstream != "" {
		u, err := url.Parse(o.upstream)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return usageErr{fmt.Sprintf("--upstream %q: want ws://host[:port] or wss://host[:port]", o.upstream)}
		}
	} else if o.tls {
		return usageErr{"--tls needs --upstream (forward mode intercepts TLS inside CONNECT by itself)"}
	}
	if o.insecureUpstream && o.upstreamCA != "" {
		return usageErr{"--insecure-upstream and --upstream-ca conflict: the first verifies no certificate, the second names whom to trust"}
	}
	if !o.pcap && (o.pcapSnap != 0 || o.pcapMaxMB != 0 || o.pcapLegs == "both") {
		return usageErr{"--pcap-snap, --pcap-max-mb and --pcap-legs need the pcapng that --pcap=false turns off"}
	}
	if o.pcapLegs != "" && o.pcapLegs != "one" && o.pcapLegs != "both" {
		return usageErr{fmt.Sprintf("--pcap-legs %q: want one or both", o.pcapLegs)}
	}
	if o.tcpKeepalive < 0 {
		return usageErr{fmt.Sprintf("--tcp-keepalive %s: want a positive duration, or 0 for off", o.tcpKeepalive)}
	}
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		return usageErr{fmt.Sprintf("--listen %q: %v", o.listen, err)}
	}
	if o.upstream != "" && (len(o.allow) > 0 || o.proxyAuth != "") {
		return usageErr{"--allow and --proxy-auth are for forward mode; with --upstream every client goes to that one upstream"}
	}
	if o.upstream == "" && !proxy.LoopbackOnly(o.listen) && len(o.allow) == 0 && o.proxyAuth == "" {
		return usageErr{fmt.Sprintf("forward mode on --listen %s, not loopback, needs --allow HOST[:PORT],... or --proxy-auth USER:PASS (or both): "+
			"without them anyone who reaches %s could use wstap as an open intercepting proxy", o.listen, o.listen)}
	}
	return nil
}

// admission puts --allow and --proxy-auth into cfg; Config.Check then
// refuses forward mode off loopback with neither.
func (o *proxyOptions) admission(cfg *proxy.Config) error {
	for _, list := range o.allow {
		rules, err := proxy.ParseAllow(list)
		if err != nil {
			return usageErr{"--allow: " + strings.TrimPrefix(err.Error(), proxy.ErrConfig.Error()+": ")}
		}
		cfg.Allow = append(cfg.Allow, rules...)
	}
	cfg.ProxyAuth = o.proxyAuth
	if file, ok := strings.CutPrefix(o.proxyAuth, "@"); ok {
		b, err := os.ReadFile(file)
		if err != nil {
			return usageErr{fmt.Sprintf("--proxy-auth: %v", err)}
		}
		line, _, _ := strings.Cut(string(b), "\n")
		cfg.ProxyAuth = strings.TrimSuffix(line, "\r")
	}
	// The value is never quoted: without a colon it may be the password alone.
	if user, _, ok := strings.Cut(cfg.ProxyAuth, ":"); o.proxyAuth != "" && (!ok || user == "") {
		return usageErr{"--proxy-auth: want USER:PASS (or @FILE holding USER:PASS on its first line), got no user before a colon"}
	}
	return nil
}

// config turns the flags into the proxy's configuration: the flags
// checked, the patterns compiled, the CA files read.
func (o *proxyOptions) config() (proxy.Config, error) {
	cfg := proxy.Config{Listen: o.listen, TLS: o.tls, InsecureUpstream: o.insecureUpstream,
		MaxHeaderBytes: o.maxHeaderBytes, HeaderTimeout: o.headerTimeout, LatePong: o.latePong,
		NoKeepalive: o.noKeepalive, MaxPerToken: o.maxPerToken, LogPayloads: o.logPayloads, MaxMessageEvents: o.maxMessageEvents,
		TCPKeepAlive: o.tcpKeepalive}
	if err := o.check(); err != nil {
		return cfg, err
	}
	if o.upstream != "" {
		cfg.Upstream, _ = url.Parse(o.upstream) // checked
	}
	if err := o.admission(&cfg); err != nil {
		return cfg, err
	}
	var err error
	if cfg.Heartbeats, err = compileAll("--heartbeat", o.heartbeats); err != nil {
		return cfg, err
	}
	if cfg.AppClose, err = compileAll("--app-close", o.appClose); err != nil {
		return cfg, err
	}
	if o.upstreamCA != "" {
		if cfg.UpstreamCAs, err = readCAs(o.upstreamCA); err != nil {
			return cfg, err
		}
	}
	if cfg.TLS || cfg.Upstream == nil {
		dir := o.caDir
		if dir == "" {
			dir = proxy.DefaultCADir()
		}
		if cfg.CA, err = proxy.LoadOrCreateCA(dir); err != nil {
			return cfg, fmt.Errorf("--ca-dir: %w", err)
		}
	}
	if err := cfg.Check(); err != nil {
		return cfg, usageErr{err.Error()}
	}
	return cfg, nil
}

// compileAll compiles the patterns of a repeatable flag.
func compileAll(flag string, patterns []string) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	for _, p := range patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, usageErr{fmt.Sprintf("%s %q: %v", flag, p, err)}
		}
		out = append(out, re)
	}
	return out, nil
}

// readCAs reads the PEM certificates of --upstream-ca.
func readCAs(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--upstream-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--upstream-ca %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// openRun opens the run dir: the recorder (behind the metrics with
// --metrics), the pcapng and the key log, and points cfg at them.
func openRun(o *proxyOptions, cfg *proxy.Config, nofile capture.NofileLimit, stderr io.Writer) (*running, error) {
	dir := o.out
	if dir == "" {
		dir = filepath.Join("wstap-runs", time.Now().UTC().Format("20060102T150405Z"))
	}
	host, _ := os.Hostname()
	info := capture.RunInfo{Version: version, Args: redactArgs(o.args), Start: time.Now().UTC(), Host: host,
		GoVersion: runtime.Version(), Mode: modeOf(cfg), Listen: o.listen, Upstream: capture.RedactURL(o.upstream),
		Nofile: nofile, TCPKeepAliveMS: o.tcpKeepalive.Milliseconds()}
	rec, err := capture.OpenRecorder(dir, info, 0, stderr)
	if err != nil {
		return nil, fmt.Errorf("--out: %w", err)
	}
	r := &running{rec: rec, dir: dir, nofile: nofile}
	cfg.Recorder = rec
	if o.metrics != "" {
		r.metrics = newMetrics(rec)
		cfg.Recorder = r.metrics
	}
	if o.pcap {
		p, err := capture.OpenPcap(dir, capture.PcapOptions{SnapLen: o.pcapSnap, MaxMB: o.pcapMaxMB,
			BothLegs: o.pcapLegs == "both"})
		if err != nil {
			rec.Close(time.Now())
			return nil, fmt.Errorf("--out: %w", err)
		}
		r.pcap = p
		cfg.Tap = p
		rec.PacketsDropped = p.Dropped
	}
	kl, err := capture.OpenPrivate(filepath.Join(dir, capture.KeylogFile), os.O_APPEND)
	if err != nil {
		r.closeRecording()
		return nil, fmt.Errorf("--out: %w", err)
	}
	r.keylog = kl
	cfg.KeyLog = kl
	cfg.Log = zerolog.New(zerolog.ConsoleWriter{Out: stderr, NoColor: true, TimeFormat: "15:04:05"}).With().Timestamp().Logger()
	return r, nil
}

func modeOf(cfg *proxy.Config) string {
	if cfg.Upstream != nil {
		return "reverse"
	}
	return "forward"
}

// start starts the proxy (and --metrics) on the opened run dir; on an
// error the run dir is closed.
func (r *running) start(o *proxyOptions, cfg proxy.Config, stderr io.Writer) error {
	srv, err := proxy.Start(cfg)
	if err != nil {
		r.closeRecording()
		if errors.Is(err, proxy.ErrConfig) {
			return usageErr{err.Error()}
		}
		return err
	}
	r.srv = srv
	if r.metrics != nil {
		stop, err := r.metrics.serve(o.metrics, srv)
		if err != nil {
			r.stop()
			return fmt.Errorf("--metrics: %w", err)
		}
		r.stopFn = append(r.stopFn, stop)
		fmt.Fprintf(stderr, "wstap: Prometheus metrics on http://%s/metrics\n", r.metrics.Addr())
	}
	nofile := r.nofile
	cfg.Log.Info().Str("listen", srv.Addr().String()).Str("mode", modeOf(&cfg)).Str("upstream", capture.RedactURL(o.upstream)).
		Uint64("nofile", nofile.Soft).Uint64("nofile_hard", nofile.Hard).Str("run_dir", r.dir).Msg("wstap proxy started")
	warnOffLoopback(o, stderr)
	return nil
}

// warnOffLoopback says who can use a proxy listening off loopback.
func warnOffLoopback(o *proxyOptions, stderr io.Writer) {
	switch {
	case proxy.LoopbackOnly(o.listen):
	case o.proxyAuth != "":
		fmt.Fprintf(stderr, "wstap: listening on %s, not loopback: forward mode for clients with the --proxy-auth credentials%s\n", o.listen, allowNote(o))
	case len(o.allow) > 0:
		fmt.Fprintf(stderr, "wstap: WARNING: listening on %s, not loopback: anyone who can reach this address can use the proxy%s\n", o.listen, allowNote(o))
	default:
		fmt.Fprintf(stderr, "wstap: WARNING: listening on %s, not loopback: anyone who can reach this address can use the proxy\n", o.listen)
	}
}

func allowNote(o *proxyOptions) string {
	if len(o.allow) == 0 {
		return ""
	}
	return ", to the targets of --allow " + o.allow.String()
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

// redactArgs hides flag values that may carry secrets: URLs with tokens,
// and the password of --proxy-auth (its user is kept; @FILE names a file).
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	secretNext := false
	for i, a := range args {
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case secretNext:
			out[i] = redactPassword(a)
		case strings.HasPrefix(a, "-") && name == "proxy-auth" && hasValue:
			out[i] = a[:len(a)-len(value)] + redactPassword(value)
		default:
			out[i] = capture.RedactURL(a)
		}
		secretNext = strings.HasPrefix(a, "-") && name == "proxy-auth" && !hasValue
	}
	return out
}

// redactPassword turns USER:PASS into USER:[redacted].
func redactPassword(v string) string {
	if strings.HasPrefix(v, "@") {
		return v
	}
	user, _, ok := strings.Cut(v, ":")
	if !ok {
		return "[redacted]"
	}
	return user + ":[redacted]"
}

const proxyHelp = `Usage: wstap proxy [flags]

Examples:
  wstap proxy --upstream wss://chat.example.com --tls          clients connect to wss://127.0.0.1:8080
  wstap proxy --upstream ws://127.0.0.1:9000 --listen 127.0.0.1:8081
  wstap proxy                                                   forward mode: jmeter -H 127.0.0.1 -P 8080
  wstap proxy --upstream wss://staging.internal --upstream-ca internal-ca.pem --out run1
  wstap proxy --listen 0.0.0.0:8080 --allow chat.example.com:443 --proxy-auth @proxy-auth.txt
                                                                forward mode for JMeter engines on other hosts:
                                                                jmeter -H wstap-host -P 8080 -u USER -a PASS

Stop with Ctrl-C (SIGINT) or SIGTERM: open sessions are recorded as proxy-shutdown.

Flags:
`

func runProxy(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	o := &proxyOptions{args: args}
	o.flags(fs)
	if code, ok := parseFlags(fs, "proxy", proxyHelp, args, stdout, stderr); !ok {
		return code
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
