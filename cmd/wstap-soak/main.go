// Command wstap-soak is wstap's soak test (issue 9, item 4): it builds
// wstap, starts a fault-injecting gobwas/ws echo upstream (this program
// again, as a child process) and 'wstap proxy' in front of it as a separate
// process, holds N WebSocket sessions through the proxy for a duration with
// pings, messages and random faults (upstream RST, upstream FIN without a
// close frame, malformed upstream frames, client aborts), replacing the
// sessions faults end, samples the proxy's RSS and goroutines every 10 s,
// SIGTERMs it and checks the records against what the clients did.
//
//	go run ./cmd/wstap-soak [--sessions 10000] [--duration 10m] [--faults 0.05] [--pcap]
//
// It is run by hand for the reliability note, not in CI. Run it from the
// module root. Exit code 0 when every check passed, 1 otherwise.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "upstream" {
		if err := runUpstream(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	ok, err := run(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "wstap-soak:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	sessions     int
	duration     time.Duration
	faults       float64
	ramp         time.Duration
	warmup       time.Duration
	sample       time.Duration
	ping         time.Duration
	messageEvery time.Duration
	messageSize  int
	pcap         bool
	dir          string
}

func parse(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("wstap-soak", flag.ContinueOnError)
	fs.IntVar(&o.sessions, "sessions", 10000, "sessions held open at once")
	fs.DurationVar(&o.duration, "duration", 10*time.Minute, "how long the sessions are held, ramp included")
	fs.Float64Var(&o.faults, "faults", 0.05, "share of sessions that carry a random fault")
	fs.DurationVar(&o.ramp, "ramp", 0, "time to open all sessions (default sessions/500 per second, at most duration/4)")
	fs.DurationVar(&o.warmup, "warmup", 0, "after the ramp, time before RSS must be flat (default 30 s, at most duration/4)")
	fs.DurationVar(&o.sample, "sample", 10*time.Second, "sampling interval of RSS and goroutines")
	fs.DurationVar(&o.ping, "ping", 20*time.Second, "each session's ping interval")
	fs.DurationVar(&o.messageEvery, "message-every", 10*time.Second, "each session's message interval")
	fs.IntVar(&o.messageSize, "message-size", 128, "bytes per message")
	fs.BoolVar(&o.pcap, "pcap", false, "run the proxy with --pcap=true (capture.pcapng)")
	fs.StringVar(&o.dir, "dir", "", "work dir: the wstap binary, the run dir, logs (default a new temp dir)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case o.sessions < 1:
		return nil, fmt.Errorf("--sessions %d: must be at least 1", o.sessions)
	case o.duration < time.Minute:
		return nil, fmt.Errorf("--duration %v: must be at least 1m", o.duration)
	case o.faults < 0 || o.faults > 1:
		return nil, fmt.Errorf("--faults %v: must be between 0 and 1", o.faults)
	case o.sample < time.Second || o.ping < time.Second || o.messageEvery < time.Second:
		return nil, fmt.Errorf("--sample %v, --ping %v, --message-every %v: each must be at least 1s", o.sample, o.ping, o.messageEvery)
	case o.messageSize < 16 || o.messageSize > 60000:
		return nil, fmt.Errorf("--message-size %d: must be between 16 and 60000", o.messageSize)
	}
	if o.ramp == 0 {
		o.ramp = min(time.Duration(o.sessions)*time.Second/500, o.duration/4)
	}
	if o.warmup == 0 {
		o.warmup = min(30*time.Second, o.duration/4)
	}
	return o, nil
}

// sources are n client source addresses, 127.0.0.2 and on: more ephemeral
// ports than one address has.
func sources(n int) []string {
	var s []string
	for i := range n {
		s = append(s, fmt.Sprintf("127.0.0.%d", 2+i))
	}
	return s
}

// run does the soak; ok says every check passed.
func run(args []string) (ok bool, err error) {
	o, err := parse(args)
	if err != nil {
		return false, err
	}
	if err := o.workDir(); err != nil {
		return false, err
	}
	fmt.Printf("wstap-soak: %d sessions for %v (ramp %v, warm-up %v), faults %.1f%%, pcap %v, work dir %s\n",
		o.sessions, o.duration, o.ramp, o.warmup, 100*o.faults, o.pcap, o.dir)

	bin, err := buildWstap(o.dir)
	if err != nil {
		return false, err
	}
	upAddr, upCmd, upStdin, err := startUpstream(o.dir)
	if err != nil {
		return false, err
	}
	defer func() { upStdin.Close(); upCmd.Wait() }()
	px, err := startProxy(bin, o.dir, upAddr, o.pcap)
	if err != nil {
		return false, err
	}
	defer func() {
		if px.cmd.ProcessState == nil {
			px.cmd.Process.Kill()
		}
	}()
	fmt.Printf("upstream %s (pid %d), proxy %s (pid %d), metrics %s, run dir %s\n",
		upAddr, upCmd.Process.Pid, px.listen, px.cmd.Process.Pid, px.metrics, px.out)

	fl, smp, begin, final := drive(o, px)
	code, took, stopErr := px.stop(2 * time.Minute)
	fmt.Printf("proxy SIGTERM: exit code %d after %v\n", code, took.Round(time.Millisecond))

	smp.print(os.Stdout)
	fl.summary(os.Stdout)
	c := &checker{o: o, fl: fl, smp: smp, warmEnd: begin.Add(o.ramp + o.warmup), runDir: px.out}
	c.add("proxy exit", stopErr == nil && code == 0, fmt.Sprintf("SIGTERM → exit code %d in %v (%v)", code, took.Round(time.Millisecond), stopErr))
	c.checkSamples()
	c.add("no leak", final.err == "" && final.active == 0 && final.goroutines <= 50,
		fmt.Sprintf("after every session ended: %d sessions active, %d goroutines (≤ 50) %s", final.active, final.goroutines, final.err))
	if err := c.checkRecords(filepath.Join(px.out, "sessions.jsonl")); err != nil {
		return false, err
	}
	c.checkRunJSON(filepath.Join(px.out, "run.json"))
	return c.print(os.Stdout), nil
}

// workDir makes the work dir, a temporary one without --dir.
func (o *options) workDir() error {
	if o.dir == "" {
		var err error
		if o.dir, err = os.MkdirTemp("", "wstap-soak-"); err != nil {
			return fmt.Errorf("creating a work dir: %w", err)
		}
		return nil
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return fmt.Errorf("--dir %s: %w", o.dir, err)
	}
	return nil
}

// drive runs the clients with the sampler beside them, waits for the proxy
// to end every session, and returns the fleet, the samples, the start and
// the final sample (all sessions ended).
func drive(o *options, px *proxyProc) (*fleet, *sampler, time.Time, sample) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fl := &fleet{cfg: clientConfig{proxy: px.listen, ping: o.ping, messageEvery: o.messageEvery,
		messageSize: o.messageSize, faults: o.faults, sources: sources(10)}}
	begin := time.Now()
	end := begin.Add(o.duration)
	var wg sync.WaitGroup
	for i := range o.sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fl.runSlot(ctx, i, begin.Add(time.Duration(i)*o.ramp/time.Duration(o.sessions)), end)
		}()
	}
	smp := &sampler{px: px, fl: fl, begin: begin}
	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() { smp.loop(sampleCtx, o.sample); close(sampled) }()
	wg.Wait()
	fmt.Printf("clients done after %v\n", time.Since(begin).Round(time.Second))

	// Every client has closed: wait for the proxy to end them all.
	for i := 0; i < 300; i++ {
		if m, err := px.scrape(); err == nil && m["wstap_sessions_active"] == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopSampling()
	<-sampled
	// Their goroutines end just after the gauge drops: give them 15 s.
	var final sample
	for i := 0; i < 150; i++ {
		if final = smp.peek(); final.err == "" && final.goroutines <= 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	smp.keep(final) // the final sample, all sessions ended
	return fl, smp, begin, final
}
