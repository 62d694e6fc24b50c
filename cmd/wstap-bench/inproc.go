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

// inprocMain is the hidden "wstap-inproc" subcommand used with --profile: the
// proxy package started the way 'wstap proxy --tls --upstream' starts it
// (recorder, pcap unless --pcap=false, key log), with a CPU profile over its
// whole life and a heap profile at the end.
func inprocMain(args []string) error {
	fs := flag.NewFlagSet("wstap-inproc", flag.ContinueOnError)
	listen := fs.String("listen", "", "listen address")
	upstream := fs.String("upstream", "", "wss:// upstream")
	caDir := fs.String("ca-dir", "", "wstap CA dir")
	upCA := fs.String("upstream-ca", "", "PEM of the upstream's CA")
	out := fs.String("out", "", "run dir")
	pcap := fs.Bool("pcap", true, "write capture.pcapng")
	fs.Bool("tls", true, "always on (as wstap proxy --tls)")
	profDir := fs.String("profile", "", "directory for cpu.pprof and heap.pprof")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*upstream)
	if err != nil {
		return fmt.Errorf("--upstream: %w", err)
	}
	ca, err := proxy.LoadOrCreateCA(*caDir)
	if err != nil {
		return fmt.Errorf("--ca-dir: %w", err)
	}
	pem, err := os.ReadFile(*upCA)
	if err != nil {
		return fmt.Errorf("--upstream-ca: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	proxy.RaiseNofile()
	rec, err := capture.OpenRecorder(*out, capture.RunInfo{Version: "bench", Start: time.Now().UTC(), Mode: "reverse"}, 0, os.Stderr)
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	cfg := proxy.Config{Listen: *listen, TLS: true, CA: ca, Upstream: u, UpstreamCAs: pool, Recorder: rec,
		Log: zerolog.New(os.Stderr)}
	var pc *capture.Pcap
	if *pcap {
		if pc, err = capture.OpenPcap(*out, capture.PcapOptions{}); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		cfg.Tap = pc
	}
	kl, err := os.Create(filepath.Join(*out, "keylog.txt"))
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	cfg.KeyLog = kl
	cpu, err := os.Create(filepath.Join(*profDir, "cpu.pprof"))
	if err != nil {
		return fmt.Errorf("--profile: %w", err)
	}
	pprof.StartCPUProfile(cpu)
	srv, err := proxy.Start(cfg)
	if err != nil {
		return fmt.Errorf("starting the proxy: %w", err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1)
	for s := range sig {
		// SIGUSR1 (the hold work, sessions held): a heap profile and MemStats.
		if s != syscall.SIGUSR1 {
			break
		}
		writeMemStats(filepath.Join(*profDir, "memstats-before-gc.json"))
		runtime.GC()
		if f, err := os.Create(filepath.Join(*profDir, "heap.pprof")); err == nil {
			pprof.WriteHeapProfile(f)
			f.Close()
		}
		writeMemStats(filepath.Join(*profDir, "memstats.json"))
	}
	pprof.StopCPUProfile()
	cpu.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	srv.Shutdown(ctx)
	cancel()
	if pc != nil {
		pc.Close()
	}
	rec.Close(time.Now())
	kl.Close()
	return nil
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
