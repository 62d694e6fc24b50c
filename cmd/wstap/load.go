package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wstap/wstap/internal/load"
)

func init() {
	register("load", "a WebSocket load generator with correct keep-alive (the control group)", runLoad)
}

const loadUsage = `Usage: wstap load --url ws(s)://HOST[:PORT]/PATH --sessions N [flags]

Opens N sessions evenly over the ramp, holds each with the keep-alive asked for
(client pings, and the server's pings answered at once), sends a message every
interval and times its echo, closes each with close 1000, then prints how every
session ended: opened, failed by reason, dropped with 1006 (no close frame) and
how long after opening, close codes, echo round trips.

Examples:
  wstap load --url wss://127.0.0.1:8443/chat --sessions 1000 --ping 20s
  wstap load --url wss://chat.example.com/ws --sessions 5000 --ramp 2m --hold 10m --ping 0
  wstap load --url wss://chat.example.com/ws --sessions 100 --proxy http://127.0.0.1:8080 --ca wstap-ca.pem
  wstap load --url ws://127.0.0.1:9000/chat --sessions 50 --header 'Authorization: Bearer TOKEN' --subprotocol v1.chat

Flags:
`

// headerFlag collects repeated --header 'Key: Value' flags.
type headerFlag struct{ h http.Header }

func (f *headerFlag) String() string { return "" }

func (f *headerFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, ":")
	k = strings.TrimSpace(k)
	if !ok || k == "" || strings.ContainsAny(k, " \t") {
		return fmt.Errorf("want 'Key: Value', got %q", v)
	}
	if f.h == nil {
		f.h = http.Header{}
	}
	f.h.Add(k, strings.TrimSpace(val))
	return nil
}

func runLoad(args []string, stdout, stderr io.Writer) int {
	var cfg load.Config
	var headers headerFlag
	var localAddrs string
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.StringVar(&cfg.URL, "url", "", "the ws:// or wss:// `URL` every session opens (required)")
	fs.IntVar(&cfg.Sessions, "sessions", 0, "`number` of sessions to open (required)")
	fs.DurationVar(&cfg.Ramp, "ramp", 30*time.Second, "spread the openings evenly over this `duration`")
	fs.DurationVar(&cfg.Hold, "hold", 60*time.Second, "keep each session open this long after its 101")
	fs.DurationVar(&cfg.Ping, "ping", 20*time.Second, "interval of the client's pings; 0 sends none")
	fs.DurationVar(&cfg.MessageEvery, "message-every", 5*time.Second, "interval of text messages whose echo is timed; 0 sends none")
	fs.IntVar(&cfg.MessageSize, "message-size", 128, "message size in `bytes` (at least 32)")
	fs.StringVar(&cfg.Proxy, "proxy", "", "HTTP proxy `http://host:port`, reached with CONNECT for ws and wss")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "do not verify the server's certificate")
	fs.StringVar(&cfg.CAFile, "ca", "", "PEM `file` of certificates to trust besides the system's (such as wstap's CA)")
	fs.Var(&headers, "header", "`'Key: Value'` sent with every upgrade request (repeatable)")
	fs.StringVar(&cfg.Subprotocol, "subprotocol", "", "offer this `subprotocol` in Sec-WebSocket-Protocol")
	fs.StringVar(&localAddrs, "local-addrs", "", "comma-separated source `IPs` used in turn, such as 127.0.0.2,127.0.0.3")
	fs.DurationVar(&cfg.Timeout, "timeout", load.DefaultTimeout, "bound on dial, CONNECT, TLS and upgrade of one session")
	if code, ok := parseFlags(fs, "load", loadUsage, args, stdout, stderr); !ok {
		return code
	}
	if code := checkLoadFlags(&cfg, stderr); code != 0 {
		return code
	}
	cfg.Headers = headers.h
	if localAddrs != "" {
		cfg.LocalAddrs = strings.Split(localAddrs, ",")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stdout, "wstap load: %d sessions to %s, ramp %s, hold %s, ping %s, message every %s\n",
		cfg.Sessions, cfg.URL, cfg.Ramp, cfg.Hold, orNone(cfg.Ping), orNone(cfg.MessageEvery))
	res, err := load.Run(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "wstap load: %v\n", err)
		return 1
	}
	res.WriteText(stdout)
	return 0
}

// checkLoadFlags refuses what cannot be right before any work starts.
func checkLoadFlags(cfg *load.Config, stderr io.Writer) int {
	switch {
	case cfg.URL == "":
		return usageError(stderr, "load", "--url is required")
	case cfg.Sessions < 1:
		return usageError(stderr, "load", "--sessions %d: give the number of sessions to open, at least 1", cfg.Sessions)
	case cfg.Ramp < 0 || cfg.Hold < 0 || cfg.Ping < 0 || cfg.MessageEvery < 0 || cfg.Timeout <= 0:
		return usageError(stderr, "load", "--ramp, --hold, --ping, --message-every may not be negative, --timeout must be positive")
	case cfg.MessageSize < 0:
		return usageError(stderr, "load", "--message-size %d: may not be negative", cfg.MessageSize)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return usageError(stderr, "load", "--url %q: want ws://host[:port]/path or wss://...", cfg.URL)
	}
	if cfg.Proxy != "" {
		p, err := url.Parse(cfg.Proxy)
		if err != nil || p.Scheme != "http" || p.Port() == "" {
			return usageError(stderr, "load", "--proxy %q: want http://host:port", cfg.Proxy)
		}
	}
	return 0
}

func orNone(d time.Duration) string {
	if d == 0 {
		return "none"
	}
	return d.String()
}
