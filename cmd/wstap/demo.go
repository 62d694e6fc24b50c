package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/report"
	"github.com/wstap/wstap/internal/atomicfile"
	"github.com/wstap/wstap/internal/load"
	"github.com/wstap/wstap/internal/platform"
)

func init() {
	register("demo", "the whole story on a built-in platform: idle drops, a session cap, pings, clean closes", runDemo)
}

// demoOptions scale the demo.
type demoOptions struct {
	sessions int
	idle     time.Duration
	cap      int
	out      string
}

// demoGroup is one kind of client in the demo.
type demoGroup struct {
	name  string
	cfg   load.Config
	delay time.Duration
	// ready, when set, holds the group back after its delay until it is
	// true (checked every 10 ms).
	ready func() bool
}

const demoHelp = `Usage: wstap demo [flags]

Runs, in one process on loopback, a built-in chat platform (TLS, an idle timeout,
a cap of concurrent sessions, pings every 2/5 of the idle timeout), wstap in reverse mode with TLS in
front of it, and groups of clients: some ping, some fall silent, some exceed the
cap, some close cleanly, one offers no subprotocol. Then prints the report.

Examples:
  wstap demo
  wstap demo --sessions 1000 --idle 3s
  wstap demo --cap 100 --out demo-run

Flags:
`

func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var o demoOptions
	fs.IntVar(&o.sessions, "sessions", 300, "how many client sessions in all")
	fs.DurationVar(&o.idle, "idle", 5*time.Second, "the built-in platform drops a session after this much client silence")
	fs.IntVar(&o.cap, "cap", 0, "the platform's cap of concurrent sessions (default: all but the over-cap group)")
	fs.StringVar(&o.out, "out", "", "run dir (default wstap-runs/demo-<UTC timestamp>)")
	if code, ok := parseFlags(fs, "demo", demoHelp, args, stdout, stderr); !ok {
		return code
	}
	if o.sessions < 10 {
		return usageError(stderr, "demo", "--sessions %d: at least 10", o.sessions)
	}
	if o.idle < 500*time.Millisecond {
		return usageError(stderr, "demo", "--idle %s: at least 500ms", o.idle)
	}
	if _, err := demo(context.Background(), o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "wstap demo: %v\n", err)
		return 1
	}
	return 0
}

// demo runs the whole story and returns the run dir.
func demo(ctx context.Context, o demoOptions, stdout, stderr io.Writer) (string, error) {
	n := o.sessions
	pinging, silent, clean := n*33/100, n*27/100, n*17/100
	over := n - pinging - silent - clean - 1
	if o.cap == 0 {
		o.cap = pinging + silent + clean + 1
	}
	// The platform pings well within its idle timeout, so the silent
	// clients answer pings and are dropped all the same: pongs do not count
	// as activity, the trap of a JMeter plan that relies on them.
	pingEvery := o.idle * 2 / 5
	plat, err := platform.Start(platform.Config{TLS: true, IdleTimeout: o.idle, Cap: o.cap, PingEvery: pingEvery})
	if err != nil {
		return "", fmt.Errorf("starting the built-in platform: %w", err)
	}
	defer plat.Close()
	dir := o.out
	if dir == "" {
		dir = filepath.Join("wstap-runs", "demo-"+time.Now().UTC().Format("20060102T150405Z"))
	}
	r, closeCA, err := startDemoProxy(plat, dir, o.idle)
	if err != nil {
		return "", err
	}
	defer closeCA()
	proxyURL := "wss://" + r.srv.Addr().String() + "/chat"
	fmt.Fprintf(stdout, "wstap demo: platform %s (idle timeout %s, cap %d, pings every %s), wstap at %s\n",
		plat.URL(), o.idle, o.cap, pingEvery, proxyURL)
	fmt.Fprintf(stdout, "  %d clients ping every %s; %d fall silent; %d send messages and close cleanly (one offers no subprotocol); %d arrive above the cap\n",
		pinging, o.idle/5, silent, clean+1, over)

	base := load.Config{URL: proxyURL, RootCAs: r.srv.CAPool(), Subprotocol: "v1.chat", Ramp: min(time.Second, o.idle/4)}
	groups := demoGroups(base, o.idle, [4]int{pinging, silent, clean, over})
	// The over-cap group waits until every other session has its 101, so
	// that on a loaded machine none of them arrives late and above the cap.
	others := int64(min(o.cap, pinging+silent+clean+1))
	groups[len(groups)-1].ready = func() bool { return plat.Stats().Upgraded >= others }
	if err := runDemoGroups(ctx, groups, stdout); err != nil {
		r.stop()
		return "", err
	}
	// The clients have their answers; let the proxy see each TCP end before
	// it stops (a session still open at shutdown is recorded as such).
	for deadline := time.Now().Add(3 * time.Second); r.srv.Stats.Active.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if err := r.stop(); err != nil {
		return "", err
	}
	fmt.Fprintln(stdout)
	if err := writeDemoReport(dir, stdout); err != nil {
		return dir, err
	}
	return dir, nil
}

// startDemoProxy starts wstap in front of the platform, with a CA of its
// own in a temporary directory that the returned function removes.
func startDemoProxy(plat *platform.Platform, dir string, idle time.Duration) (*running, func(), error) {
	caDir, err := os.MkdirTemp("", "wstap-demo-ca-")
	if err != nil {
		return nil, nil, err
	}
	remove := func() { os.RemoveAll(caDir) }
	certFile := filepath.Join(caDir, "platform.pem")
	if err := os.WriteFile(certFile, plat.CertPEM(), 0o600); err != nil {
		remove()
		return nil, nil, err
	}
	po := &proxyOptions{listen: "127.0.0.1:0", upstream: plat.URL(), tls: true, out: dir, caDir: filepath.Join(caDir, "ca"),
		upstreamCA: certFile, pcap: true, maxHeaderBytes: 64 << 10, headerTimeout: 30 * time.Second,
		latePong: 5 * time.Second, noKeepalive: idle * 8 / 10, maxPerToken: 3, maxMessageEvents: 1000, args: []string{"demo"}}
	r, err := startProxy(po, io.Discard)
	if err != nil {
		remove()
		return nil, nil, err
	}
	return r, remove, nil
}

// demoGroups are the demo's kinds of client; n holds how many ping, fall
// silent, close cleanly and arrive over the cap. Every group opens within
// base.Ramp; the over-cap group comes after all are open and before the
// first silent session reaches the idle timeout.
func demoGroups(base load.Config, idle time.Duration, n [4]int) []demoGroup {
	pinging, silent, clean, over := n[0], n[1], n[2], n[3]
	overCapAt := base.Ramp + max(300*time.Millisecond, idle/4)
	return []demoGroup{
		{name: "pinging", cfg: with(base, func(c *load.Config) { c.Sessions, c.Ping, c.Hold = pinging, idle/5, 2*base.Ramp+idle+idle/2 })},
		{name: "silent", cfg: with(base, func(c *load.Config) { c.Sessions, c.Hold = silent, 3*idle })},
		// Messages keep these below the idle timeout; they close cleanly
		// after the over-cap group has come and gone.
		{name: "clean", cfg: with(base, func(c *load.Config) {
			c.Sessions, c.MessageEvery, c.Hold = clean, idle/5, 2*base.Ramp+idle
		})},
		{name: "no-subprotocol", cfg: with(base, func(c *load.Config) {
			c.Sessions, c.MessageEvery, c.Hold, c.Subprotocol = 1, idle/5, 2*base.Ramp+idle, ""
		})},
		// They arrive once every other group is open: above the cap.
		{name: "over-cap", delay: overCapAt, cfg: with(base, func(c *load.Config) {
			c.Sessions, c.Ping, c.Hold, c.Ramp = over, idle/5, idle, 300*time.Millisecond
		})},
	}
}

// runDemoGroups runs the groups side by side and prints what each saw.
func runDemoGroups(ctx context.Context, groups []demoGroup, stdout io.Writer) error {
	results := make([]*load.Result, len(groups))
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-time.After(g.delay):
			case <-ctx.Done():
				return
			}
			for g.ready != nil && !g.ready() {
				select {
				case <-time.After(10 * time.Millisecond):
				case <-ctx.Done():
					return
				}
			}
			// The group names itself in the URL, so the records say which it was.
			g.cfg.URL += "?group=" + g.name
			results[i], errs[i] = load.Run(ctx, g.cfg, io.Discard)
		}()
	}
	wg.Wait()
	for i, g := range groups {
		if errs[i] != nil {
			return fmt.Errorf("client group %s: %w", g.name, errs[i])
		}
		res := results[i]
		fmt.Fprintf(stdout, "  clients %-15s opened %4d  failed %3d  dropped with 1006 %4d  clean closes %4d\n",
			g.name, res.Opened, res.FailedTotal(), len(res.Dropped1006), res.Clean)
	}
	return nil
}

func with(c load.Config, f func(*load.Config)) load.Config {
	f(&c)
	return c
}

// writeDemoReport prints the summary and writes report.html and a bundle.
func writeDemoReport(dir string, stdout io.Writer) error {
	run, err := report.LoadRun(dir)
	if err != nil {
		return err
	}
	sum := report.Summarize(run)
	if err := sum.WriteText(stdout); err != nil {
		return err
	}
	html := filepath.Join(dir, "report.html")
	if err := writeReportHTML(sum, html); err != nil {
		return err
	}
	bundle := filepath.Join(dir, "evidence.tar.gz")
	d, err := capture.OpenRunDir(dir)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(bundle, sharedMode(false), func(w io.Writer) error {
		return report.WriteBundle(d, w, report.BundleOptions{})
	}); err != nil {
		return fmt.Errorf("writing %s: %w", bundle, err)
	}
	fmt.Fprintf(stdout, "\nRun dir:  %s\nReport:   %s (open it in a browser)\nBundle:   %s (redacted, for a support ticket)\nCapture:  tshark -r %s -Y websocket\n",
		dir, html, bundle, filepath.Join(dir, "capture.pcapng"))
	return nil
}
