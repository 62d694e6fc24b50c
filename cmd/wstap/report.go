package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/report"
	"github.com/wstap/wstap/internal/atomicfile"
	"github.com/wstap/wstap/internal/jmeter"
)

func init() {
	register("report", "summary of run dirs to stdout, and report.html", runReport)
}

const reportHelp = `Usage: wstap report RUN_DIR... [--html FILE] [--json] [--plan FILE.jmx]

Prints what ended how and why: sessions by verdict; how many ended in 1006
and who dropped them; the cause of every 1006 session (a concurrency cap per
platform, per credential or per target with its level; an idle timeout, a
ping timeout or a session lifetime with its value; TLS; the client; wstap
itself), each with its evidence; the seven usual explanations, each
confirmed, ruled out or without data; keep-alive of the 1006 sessions and
the others side by side, judged against the platform; findings per rule; TLS
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
  wstap report --json wstap-runs/20261128T101500Z | jq .causes
  wstap report wstap-runs/20261128T101500Z --plan chat-plan.jmx
  wstap report wstap-runs/engine-a wstap-runs/engine-b --html merged.html
  wstap report wstap-runs/20261128T101500Z --html /tmp/report.html

Flags:
`

func runReport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	htmlPath := fs.String("html", "", "write the HTML report to `FILE` (default RUN_DIR/report.html for one run dir, ./report.html for several)")
	asJSON := fs.Bool("json", false, "print the summary as one JSON document instead of text")
	planFile := fs.String("plan", "", "the JMeter plan (`FILE.jmx`) that drove the run: its findings beside the causes")
	dirs, code, ok := parseWithOperands(fs, "report", reportHelp, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(dirs) == 0 {
		return usageError(stderr, "report", "no RUN_DIR given")
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(report.MemoryLimit)
	}
	progress := startReportProgress(stderr, dirs)
	runs, err := report.LoadRuns(dirs, progress.add)
	if err != nil {
		progress.stop()
		fmt.Fprintf(stderr, "wstap report: %v\n", err)
		return 1
	}
	s := report.Summarize(runs...)
	progress.stop()
	if *planFile != "" {
		p, err := jmeter.ReadFile(*planFile)
		if err != nil {
			fmt.Fprintf(stderr, "wstap report: --plan: %v\n", err)
			return 2
		}
		s.AttachPlan(planCheck(p, *planFile, s.Keepalive.IdleTimeoutMS))
	}

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

// planCheck judges a plan against the run: its keep-alive against the idle
// timeout the run inferred (60 s, wstap plan's default, when none).
func planCheck(p *jmeter.Plan, file string, idleMS float64) *report.PlanCheck {
	idle := 60 * time.Second
	if idleMS > 0 {
		idle = time.Duration(idleMS * float64(time.Millisecond))
	}
	pc := &report.PlanCheck{File: file}
	for _, tg := range p.ThreadGroups {
		t := tg.Timing()
		g := report.PlanGroupCheck{Name: tg.Name, Summary: tg.Summary(), Findings: []report.PlanFinding{},
			AnswerGapS: finiteOr(t.AnswerGap, -1), SendGapS: finiteOr(t.SendGap, -1)}
		for _, f := range jmeter.CheckGroup(tg, idle) {
			g.Findings = append(g.Findings, report.PlanFinding{Rule: f.Rule, Detail: f.Detail})
		}
		pc.ThreadGroups = append(pc.ThreadGroups, g)
	}
	return pc
}

func finiteOr(v, or float64) float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return or
	}
	return v
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
