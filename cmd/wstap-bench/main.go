// Command wstap-bench measures wstap against no proxy (direct), nginx,
// HAProxy and mitmproxy on loopback, wss on both legs: idle sessions held and
// their memory, echo latency, throughput of 16 KiB and 64-byte messages, new
// sessions per second, and the cost of wstap's recording. It prints one table
// and writes a JSON file.
//
//	go run ./cmd/wstap-bench [--n 1000,5000] [--targets direct,wstap,nginx,haproxy,mitmproxy] [--quick] [--out bench.json]
package main

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wstap/wstap/internal/load"
)

// options are the harness's flags.
type options struct {
	ns                   []int
	targets, works       []string
	quick, install, keep bool
	out, profile         string
	latSessions          int
	hold, tp, hs, latDur time.Duration
	settle               time.Duration
	repeat               int
	sources              int
	wstapEnv             envList
}

// envList is a repeatable NAME=VALUE flag.
type envList []string

func (l *envList) String() string { return strings.Join(*l, " ") }
func (l *envList) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("%q: want NAME=VALUE", v)
	}
	*l = append(*l, v)
	return nil
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "wstap-inproc" {
		if err := inprocMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "wstap-bench wstap-inproc:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "echo" {
		if err := echoMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "wstap-bench echo:", err)
			os.Exit(1)
		}
		return
	}
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "wstap-bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "wstap-bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("wstap-bench", flag.ContinueOnError)
	o := &options{}
	n, targets, works := defineFlags(fs, o)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := o.parseLists(*n, *targets, *works); err != nil {
		return nil, err
	}
	if o.repeat < 1 {
		return nil, fmt.Errorf("--repeat %d: want at least 1", o.repeat)
	}
	if o.sources < 1 || o.sources > 250 {
		return nil, fmt.Errorf("--sources %d: want 1 to 250", o.sources)
	}
	if o.quick {
		o.shorten(fs)
	}
	if o.settle >= o.hold {
		return nil, fmt.Errorf("--settle %s must be shorter than --hold %s", o.settle, o.hold)
	}
	return o, nil
}

// defineFlags declares the harness's flags into o; the comma-separated ones
// come back as strings for parseLists.
func defineFlags(fs *flag.FlagSet, o *options) (n, targets, works *string) {
	n = fs.String("n", "1000,5000", "hold work: numbers of idle sessions, comma-separated")
	targets = fs.String("targets", strings.Join(allTargets, ","), "what to measure, comma-separated: "+strings.Join(allTargets, ","))
	works = fs.String("works", "hold,latency,throughput,handshakes", "works to run, comma-separated")
	fs.BoolVar(&o.quick, "quick", false, "short runs (for a first look; the figures are noisier)")
	fs.BoolVar(&o.install, "install", true, "apt-get install nginx-light, haproxy, mitmproxy when missing")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configs, logs)")
	fs.StringVar(&o.out, "out", "bench.json", "JSON results file")
	fs.IntVar(&o.latSessions, "latency-sessions", 5000, "latency work: sessions, each sending a 256-byte message per second")
	fs.DurationVar(&o.hold, "hold", 30*time.Second, "hold work: how long the sessions stay open")
	fs.DurationVar(&o.settle, "settle", 5*time.Second, "hold work: wait this long after the last session opened before reading RSS (Go forces a GC every 2 minutes: 130s shows wstap after one)")
	fs.IntVar(&o.repeat, "repeat", 3, "throughput and handshake works: runs of each target, interleaved; the table shows the median")
	fs.DurationVar(&o.latDur, "latency-time", 20*time.Second, "latency work: how long messages are sent")
	fs.DurationVar(&o.tp, "throughput-time", 10*time.Second, "throughput work: measured time of each message size")
	fs.DurationVar(&o.hs, "handshake-time", 20*time.Second, "handshake work: duration")
	fs.StringVar(&o.profile, "profile", "", "run wstap in-process (the proxy package) with pprof CPU and heap profiles into this directory, one sub-directory per job")
	fs.Var(&o.wstapEnv, "wstap-env", "NAME=VALUE added to wstap's environment (repeatable; e.g. GODEBUG=adaptivestackstart=0, GOGC=50)")
	fs.IntVar(&o.sources, "sources", 19, "client source addresses 127.0.0.2 and on")
	return n, targets, works
}

// parseLists fills o.ns, o.targets (direct always first, ratios need it)
// and o.works from the comma-separated flags.
func (o *options) parseLists(n, targets, works string) error {
	for _, s := range strings.Split(n, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || v <= 0 {
			return fmt.Errorf("--n %q: want positive numbers separated by commas", n)
		}
		o.ns = append(o.ns, v)
	}
	for _, t := range strings.Split(targets, ",") {
		if !contains(allTargets, t) {
			return fmt.Errorf("--targets: unknown target %q (want %s)", t, strings.Join(allTargets, ","))
		}
		o.targets = append(o.targets, t)
	}
	if !contains(o.targets, "direct") {
		o.targets = append([]string{"direct"}, o.targets...) // ratios need it
	}
	for _, w := range strings.Split(works, ",") {
		if !contains([]string{"hold", "latency", "throughput", "handshakes"}, w) {
			return fmt.Errorf("--works: unknown work %q", w)
		}
		o.works = append(o.works, w)
	}
	return nil
}

// shorten is --quick: shorter defaults for every flag not set on the
// command line.
func (o *options) shorten(fs *flag.FlagSet) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["latency-sessions"] {
		o.latSessions = 500
	}
	if !set["hold"] {
		o.hold = max(10*time.Second, o.settle+5*time.Second)
	}
	if !set["latency-time"] {
		o.latDur = 8 * time.Second
	}
	if !set["throughput-time"] {
		o.tp = 4 * time.Second
	}
	if !set["repeat"] {
		o.repeat = 1
	}
	if !set["handshake-time"] {
		o.hs = 10 * time.Second
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// runEnv is what every job of a run shares.
type runEnv struct {
	tmp, repo, self   string
	wstapBin, wstapCA string
	certs             *certFiles
	roots             *x509.CertPool
	locals            []string
	bins              map[string]string
	seq               int
	profile           string // --profile: run wstap in-process with pprof
	wstapEnv          []string
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// setup builds wstap, makes the certificates and finds the peers.
func setup(o *options, res *Results) (*runEnv, error) {
	e := &runEnv{bins: map[string]string{}, profile: o.profile, wstapEnv: o.wstapEnv}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		return nil, fmt.Errorf("finding the module root with 'go env GOMOD': run from inside the wstap checkout (%v)", err)
	}
	e.repo = filepath.Dir(strings.TrimSpace(string(out)))
	if e.self, err = os.Executable(); err != nil {
		return nil, fmt.Errorf("finding this program's path: %w", err)
	}
	if e.tmp, err = os.MkdirTemp("", "wstap-bench-"); err != nil {
		return nil, fmt.Errorf("creating a temporary directory: %w", err)
	}
	if res.Nofile, err = load.RaiseOpenFileLimit(); err != nil {
		logf("%v", err)
	}
	e.wstapBin = filepath.Join(e.tmp, "wstap")
	logf("building wstap into %s", e.wstapBin)
	build := exec.Command("go", "build", "-o", e.wstapBin, "./cmd/wstap")
	build.Dir = e.repo
	if out, err := build.CombinedOutput(); err != nil {
		return e, fmt.Errorf("go build ./cmd/wstap: %v: %s", err, out)
	}
	if e.certs, err = makeCerts(e.tmp); err != nil {
		return e, err
	}
	e.wstapCA = filepath.Join(e.tmp, "wstap-ca")
	if out, err := exec.Command(e.wstapBin, "ca", "init", "--ca-dir", e.wstapCA).CombinedOutput(); err != nil {
		return e, fmt.Errorf("wstap ca init --ca-dir %s: %v: %s", e.wstapCA, err, out)
	}
	caPEM, err := os.ReadFile(filepath.Join(e.wstapCA, "ca.pem"))
	if err != nil {
		return e, fmt.Errorf("reading wstap's CA: %w", err)
	}
	e.roots = e.certs.pool.Clone()
	if !e.roots.AppendCertsFromPEM(caPEM) {
		return e, fmt.Errorf("%s/ca.pem: no certificate in it", e.wstapCA)
	}
	for i := range o.sources {
		e.locals = append(e.locals, fmt.Sprintf("127.0.0.%d", 2+i))
	}
	for _, t := range o.targets {
		if _, ok := tools[t]; !ok {
			continue
		}
		p, err := ensureTool(t, o.install, logf)
		if err != nil {
			res.row(t).Unavailable = err.Error()
			logf("%s: unavailable: %v", t, err)
			continue
		}
		e.bins[t] = p
		res.row(t).Version = toolVersion(p)
	}
	return e, nil
}

// toolVersion is the first line a program prints about its version.
func toolVersion(bin string) string {
	arg := "-v"
	if strings.HasSuffix(bin, "mitmdump") {
		arg = "--version"
	}
	out, _ := exec.Command(bin, arg).CombinedOutput()
	return lastLineOf(firstLine(out))
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

func lastLineOf(s string) string { return strings.TrimSpace(s) }

// dialerSized makes the client of one job, with a read buffer of size
// bytes per session.
func (e *runEnv) dialerSized(url string, size int) *dialer {
	d, err := load.NewDialer(load.Config{URL: url, RootCAs: e.roots, LocalAddrs: e.locals, Timeout: 10 * time.Second})
	return &dialer{d: d, err: err, bufSize: size}
}
