package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/report"
)

func init() {
	register("har", "HAR 1.2 of a run dir's sessions, for Chrome DevTools (secrets redacted)", runHAR)
}

const harHelp = `Usage: wstap har RUN_DIR -o FILE.har [--include-payloads] [--har-max-messages N]

Writes the run's sessions as HAR 1.2: one entry per WebSocket session
(_resourceType "websocket", the upgrade request and response, Chrome's
_webSocketMessages with type send/receive, time in epoch seconds, opcode and
data), ping, pong and close frames in _webSocketControlFrames, and one entry
per non-WebSocket request. Open it in Chrome DevTools: Network > Import HAR
file; the Messages tab of a WebSocket entry lists its messages.

Header values, token-like query parameters and JWT-shaped strings are
redacted; message data is left out ("") unless --include-payloads.

Examples:
  wstap har wstap-runs/20261128T101500Z -o run.har
  wstap har wstap-runs/20261128T101500Z -o run.har --include-payloads --har-max-messages 100
  wstap har wstap-runs/20261128T101500Z -o - | jq '.log.entries | length'

Flags:
`

func runHAR(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("har", flag.ContinueOnError)
	out := fs.String("o", "", "write the HAR to `FILE.har` (- for stdout)")
	var opts report.HAROptions
	fs.BoolVar(&opts.IncludePayloads, "include-payloads", false, "keep message data (text secrets still redacted)")
	fs.IntVar(&opts.MaxMessages, "har-max-messages", report.DefaultHARMaxMessages, "keep at most `N` messages (and N control frames) per session; -1: all")
	dirs, code, ok := parseWithOperands(fs, "har", harHelp, args, stdout, stderr)
	if !ok {
		return code
	}
	switch {
	case len(dirs) == 0:
		return usageError(stderr, "har", "no RUN_DIR given")
	case len(dirs) > 1:
		return usageError(stderr, "har", "one RUN_DIR at a time, got %d: %q", len(dirs), dirs)
	case *out == "":
		return usageError(stderr, "har", "-o FILE.har is required")
	case opts.MaxMessages == 0:
		return usageError(stderr, "har", "--har-max-messages 0 would keep no message; use -1 for all")
	}
	d, err := capture.OpenRunDir(dirs[0])
	if err == nil {
		err = writeOutput(*out, sharedMode(opts.IncludePayloads), stdout, func(w io.Writer) error { return report.WriteHAR(w, d, opts) })
	}
	if err != nil {
		fmt.Fprintf(stderr, "wstap har: %v\n", err)
		return 1
	}
	warnBadLines(stderr, "har", d)
	if *out != "-" {
		fmt.Fprintf(stderr, "wstap har: wrote %s\n", *out)
	}
	return 0
}
