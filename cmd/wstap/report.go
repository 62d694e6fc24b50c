package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/report"
	"github.com/wstap/wstap/internal/atomicfile"
)

func init() {
	register("report", "summary of run dirs to stdout, and report.html", runReport)
}

const reportHelp = `Usage: wstap report RUN_DIR... [--html FILE] [--json]

Prints what ended how and why: sessions by verdict; how many ended in 1006
and who dropped them; the concurrency at the first 1006 and the level above
which drops concentrate; the silence before the drops and the idle-timeout or
session-lifetime inference; keep-alive per direction; findings per rule; TLS
per leg (failures by alert, by concurrency and over time, renegotiations,
close_notify or bare TCP ends); statuses of the non-WebSocket requests (429s);
events dropped. It also writes report.html: one self-contained page (no network, no
script) with the charts and a timeline of each session that ended in 1006.

One run dir: the page is RUN_DIR/report.html. Several run dirs (several
proxies in front of several load generators) merge into one report on
wall-clock time: counts add up, concurrency is replayed across all runs, and
the page goes to --html FILE (default ./report.html).

Examples:
  wstap report wstap-runs/20261128T101500Z
  wstap report --json wstap-runs/20261128T101500Z | jq .concurrency.threshold
  wstap report wstap-runs/engine-a wstap-runs/engine-b --html merged.html
  wstap report wstap-runs/20261128T101500Z --html /tmp/report.html

Flags:
`

func runReport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	htmlPath := fs.String("html", "", "write the HTML report to `FILE` (default RUN_DIR/report.html for one run dir, ./report.html for several)")
	asJSON := fs.Bool("json", false, "print the summary as one JSON document instead of text")
	dirs, code, ok := parseWithOperands(fs, "report", reportHelp, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(dirs) == 0 {
		return usageError(stderr, "report", "no RUN_DIR given")
	}
	runs := make([]*report.Run, 0, len(dirs))
	for _, d := range dirs {
		r, err := report.LoadRun(d)
		if err != nil {
			fmt.Fprintf(stderr, "wstap report: %v\n", err)
			return 1
		}
		runs = append(runs, r)
	}
	s := report.Summarize(runs...)

	out := *htmlPath
	if out == "" {
		out = "report.html"
		if len(dirs) == 1 {
			out = filepath.Join(dirs[0], "report.html")
		}
	}
	if err := writeReportHTML(s, out); err != nil {
		fmt.Fprintf(stderr, "wstap report: %v\n", err)
		return 1
	}

	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s); err != nil {
			fmt.Fprintf(stderr, "wstap report: writing JSON: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "HTML report: %s\n", out)
		return 0
	}
	if err := s.WriteText(stdout); err != nil {
		fmt.Fprintf(stderr, "wstap report: writing the summary: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "\nHTML report: %s\n", out)
	return 0
}

// warnBadLines says on stderr how many lines of the run dir's JSONL files
// did not parse and were left out, quoting the first with file and line.
func warnBadLines(stderr io.Writer, cmd string, d *capture.RunDir) {
	if d.Bad.Count > 0 {
		fmt.Fprintf(stderr, "wstap %s: WARNING: %s: %s\n", cmd, d.Dir, d.Bad)
	}
}

// writeReportHTML writes the page whole: to a temporary file, then renamed.
// In a run dir it is private like its neighbours (mode 0600); elsewhere
// (--html, or ./report.html for several run dirs) it is an ordinary file the
// user means to open or publish (0644): it quotes no header, cookie or
// payload, only redacted URLs and credential hashes.
func writeReportHTML(s *report.Summary, path string) error {
	return atomicfile.Write(path, reportMode(path), func(w io.Writer) error {
		if err := s.WriteHTML(w); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		return nil
	})
}

// reportMode is the mode of a report written to path.
func reportMode(path string) os.FileMode {
	if capture.IsRunDir(filepath.Dir(path)) {
		return capture.PrivateMode
	}
	return 0o644
}
