package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/proxy"
)

// inprocOptions are the flags of "wstap-inproc", the subset of 'wstap proxy'
// the harness passes, plus --profile.
type inprocOptions struct {
	listen, upstream, caDir, upCA, out, profDir string
	pcap                                        bool
}

// inprocProxy is the proxy's configuration and the files it writes to.
type inprocProxy struct {
	cfg proxy.Config
	rec *capture.Recorder
	pc  *capture.Pcap
	kl  *os.File
}

// inprocMain is the hidden "wstap-inproc" subcommand used with --profile: the
// proxy package started the way 'wstap proxy --tls --upstream' starts it
// (recorder, pcap unless --pcap=false, key log), with a CPU profile over its
// whole life and a heap profile at the end.
func inprocMain(args []string) error {
	o, err := parseInprocFlags(args)
	if err != nil {
		return err
	}
	p, err := openInproc(o)
	if err != nil {
		return err
	}
	cpu, err := os.Create(filepath.Join(o.profDir, "cpu.pprof"))
	if err != nil {
		return fmt.Errorf("--profile: %w", err)
	}
	pprof.StartCPUProfile(cpu)
	srv, err := proxy.Start(p.cfg)
	if err != nil {
		return fmt.Errorf("starting the proxy: %w", err)
	}
	profileUntilSignal(o.profDir)
	pprof.StopCPUProfile()
	cpu.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	srv.Shutdown(ctx)
	cancel()
	p.close()
	return nil
}

func parseInprocFlags(args []string) (*inprocOptions, error) {
	fs := flag.NewFlagSet("wstap-inproc", flag.ContinueOnError)
	o := &inprocOptions{}
	fs.StringVar(&o.listen, "listen", "", "listen address")
	fs.StringVar(&o.upstream, "upstream", "", "wss:// upstream")
	fs.StringVar(&o.caDir, "ca-dir", "", "wstap CA dir")
	fs.StringVar(&o.upCA, "upstream-ca", "", "PEM of the upstream's CA")
	fs.StringVar(&o.out, "out", "", "run dir")
	fs.BoolVar(&o.pcap, "pcap", true, "write capture.pcapng")
	fs.Bool("tls", true, "always on (as wstap proxy --tls)")
	fs.StringVar(&o.profDir, "profile", "", "directory for cpu.pprof and heap.pprof")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return o, nil
}

// openInproc loads the CAs, raises the open-file limit and opens the
// recorder, the pcap (unless --pcap=false) and the key log.
func openInproc(o *inprocOptions) (*inprocProxy, error) {
	u, err := url.Parse(o.upstream)
	if err != nil {
		return nil, fmt.Errorf("--upstream: %w", err)
	}
	ca, err := proxy.LoadOrCreateCA(o.caDir)
	if err != nil {
		return nil, fmt.Errorf("--ca-dir: %w", err)
	}
	pem, err := os.ReadFile(o.upCA)
	if err != nil {
		return nil, fmt.Errorf("--upstream-ca: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	proxy.RaiseNofile()
	p := &inprocProxy{}
	p.rec, err = capture.OpenRecorder(o.out, capture.RunInfo{Version: "bench", Start: time.Now().UTC(), Mode: "reverse"}, 0, os.Stderr)
	if err != nil {
		return nil, fmt.Errorf("--out: %w", err)
	}
	p.cfg = proxy.Config{Listen: o.listen, TLS: true, CA: ca, Upstream: u, UpstreamCAs: pool, Recorder: p.rec,
		Log: zerolog.New(os.Stderr)}
	if o.pcap {
		if p.pc, err = capture.OpenPcap(o.out, capture.PcapOptions{}); err != nil {
			return nil, fmt.Errorf("--out: %w", err)
		}
		p.cfg.Tap = p.pc
	}
	if p.kl, err = os.Create(filepath.Join(o.out, "keylog.txt")); err != nil {
		return nil, fmt.Errorf("--out: %w", err)
	}
	p.cfg.KeyLog = p.kl
	return p, nil
}

// profileUntilSignal waits for SIGINT or SIGTERM. On each SIGUSR1 (the hold
// work, sessions held) it writes a heap profile and MemStats into profDir.
func profileUntilSignal(profDir string) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1)
	for s := range sig {
		if s != syscall.SIGUSR1 {
			break
		}
		writeMemStats(filepath.Join(profDir, "memstats-before-gc.json"))
		runtime.GC()
		if f, err := os.Create(filepath.Join(profDir, "heap.pprof")); err == nil {
			pprof.WriteHeapProfile(f)
			f.Close()
		}
		writeMemStats(filepath.Join(profDir, "memstats.json"))
	}
}

// close closes the pcap, the recorder and the key log, in that order.
func (p *inprocProxy) close() {
	if p.pc != nil {
		p.pc.Close()
	}
	p.rec.Close(time.Now())
	p.kl.Close()
}

// writeMemStats records where the process's memory is (heap, stacks, idle).
func writeMemStats(path string) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	b, _ := json.MarshalIndent(map[string]any{"goroutines": runtime.NumGoroutine(), "heap_inuse": m.HeapInuse,
		"heap_alloc": m.HeapAlloc, "heap_idle": m.HeapIdle, "heap_released": m.HeapReleased, "stack_inuse": m.StackInuse,
		"sys": m.Sys, "mspan_inuse": m.MSpanInuse, "gc_sys": m.GCSys, "other_sys": m.OtherSys}, "", "  ")
	os.WriteFile(path, b, 0o644)
}
