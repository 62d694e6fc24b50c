package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/record"
)

func init() {
	register("audit", "count the findings of run dirs per rule, with example sessions", runAudit)
}

const auditHelp = `Usage: wstap audit [--json] RUN_DIR...

Reads RUN_DIR/sessions.jsonl and prints, for every rule that fired (handshake
audit, frames, keep-alive), its severity, how many sessions it fired on, up to
3 example session ids and one example detail; errors first, then warnings,
then notes, most frequent first. Lines that do not parse are left out,
counted and quoted with their file and line. Several run dirs are counted together; their example ids are then
prefixed with the run dir's name. A path to a sessions.jsonl file works too.

Examples:
  wstap audit wstap-runs/20261128T101500Z
  wstap audit wstap-runs/proxy-a wstap-runs/proxy-b
  wstap audit --json wstap-runs/20261128T101500Z | jq '.rules[] | select(.severity == "error")'

Flags:
`

// auditExamples is how many example session ids a rule lists.
const auditExamples = 3

// ruleCount is one line of the audit: a rule and where it fired.
type ruleCount struct {
	Rule          string   `json:"rule"`
	Severity      string   `json:"severity"`
	Sessions      int      `json:"sessions"`
	Findings      int      `json:"findings"`
	Examples      []string `json:"examples"`
	ExampleDetail string   `json:"example_detail"`
}

// auditSummary is what "wstap audit --json" prints.
type auditSummary struct {
	RunDirs              []string    `json:"run_dirs"`
	Sessions             int         `json:"sessions"`
	SessionsWithFindings int         `json:"sessions_with_findings"`
	SkippedLines         int         `json:"skipped_lines"`
	SkippedExamples      []string    `json:"skipped_examples,omitempty"`
	Rules                []ruleCount `json:"rules"`
}

func runAudit(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the counts as one JSON document")
	dirs, code, ok := parseWithOperands(fs, "audit", auditHelp, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(dirs) == 0 {
		return usageError(stderr, "audit", "no RUN_DIR given")
	}

	sum := auditSummary{RunDirs: dirs}
	byRule := map[string]*ruleCount{}
	for _, dir := range dirs {
		prefix := ""
		if len(dirs) > 1 {
			prefix = filepath.Base(filepath.Clean(dir)) + "/"
		}
		var bad capture.BadLines
		err := auditSessions(dir, &bad, func(rec *record.Session) error {
			countSession(rec, prefix, &sum, byRule)
			return nil
		})
		if err != nil {
			fmt.Fprintf(stderr, "wstap audit: %v\n", err)
			return 1
		}
		if bad.Count > 0 {
			fmt.Fprintf(stderr, "wstap audit: %s: %s\n", dir, bad)
			sum.SkippedLines += bad.Count
			sum.SkippedExamples = append(sum.SkippedExamples, bad.Examples...)
		}
	}
	sum.Rules = sortedRules(byRule)

	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			fmt.Fprintf(stderr, "wstap audit: writing: %v\n", err)
			return 1
		}
		return 0
	}
	printAudit(stdout, &sum)
	return 0
}

// auditSessions streams the records of a run dir, or of arg itself when it
// is a file (a sessions.jsonl copied elsewhere), into fn.
func auditSessions(arg string, bad *capture.BadLines, fn func(*record.Session) error) error {
	if fi, err := os.Stat(arg); err == nil && !fi.IsDir() {
		return capture.ReadJSONL(arg, bad, fn)
	}
	d, err := capture.OpenRunDir(arg)
	if err != nil {
		return err
	}
	if !d.Has(capture.SessionsFile) {
		return fmt.Errorf("run dir %s: no %s", arg, capture.SessionsFile)
	}
	err = d.Sessions(fn)
	*bad = d.Bad
	return err
}

// countSession adds one record's findings, each rule counted once per
// session for Sessions and every time for Findings.
func countSession(rec *record.Session, prefix string, sum *auditSummary, byRule map[string]*ruleCount) {
	sum.Sessions++
	if len(rec.Findings) > 0 {
		sum.SessionsWithFindings++
	}
	var seen []string
	for _, f := range rec.Findings {
		rc := byRule[f.Rule]
		if rc == nil {
			rc = &ruleCount{Rule: f.Rule, Severity: f.Severity, Examples: []string{}, ExampleDetail: f.Detail}
			byRule[f.Rule] = rc
		}
		rc.Findings++
		if slices.Contains(seen, f.Rule) {
			continue
		}
		seen = append(seen, f.Rule)
		rc.Sessions++
		if len(rc.Examples) < auditExamples {
			rc.Examples = append(rc.Examples, prefix+rec.ID)
		}
	}
}

// severityRank orders severities: errors first, unknown ones last.
func severityRank(s string) int {
	switch s {
	case record.SevError:
		return 0
	case record.SevWarn:
		return 1
	case record.SevInfo:
		return 2
	}
	return 3
}

// sortedRules orders the rules by severity, then by sessions (most first),
// then by name.
func sortedRules(byRule map[string]*ruleCount) []ruleCount {
	rules := make([]ruleCount, 0, len(byRule))
	for _, rc := range byRule {
		rules = append(rules, *rc)
	}
	slices.SortFunc(rules, func(a, b ruleCount) int {
		if d := severityRank(a.Severity) - severityRank(b.Severity); d != 0 {
			return d
		}
		if d := b.Sessions - a.Sessions; d != 0 {
			return d
		}
		return strings.Compare(a.Rule, b.Rule)
	})
	return rules
}

// printAudit writes the table: one line per rule, its example detail below.
func printAudit(w io.Writer, sum *auditSummary) {
	fmt.Fprintf(w, "%d sessions in %d run dir(s), %d with findings", sum.Sessions, len(sum.RunDirs), sum.SessionsWithFindings)
	if sum.SkippedLines > 0 {
		noun := "lines"
		if sum.SkippedLines == 1 {
			noun = "line"
		}
		fmt.Fprintf(w, ", %d unparsable %s skipped", sum.SkippedLines, noun)
	}
	fmt.Fprintln(w)
	if len(sum.Rules) == 0 {
		fmt.Fprintln(w, "no findings")
		return
	}
	width := len("RULE")
	for _, rc := range sum.Rules {
		width = max(width, len(rc.Rule))
	}
	fmt.Fprintf(w, "\n%-8s  %-*s  %8s  %s\n", "SEVERITY", width, "RULE", "SESSIONS", "EXAMPLES")
	for _, rc := range sum.Rules {
		fmt.Fprintf(w, "%-8s  %-*s  %8d  %s\n", rc.Severity, width, rc.Rule, rc.Sessions, strings.Join(rc.Examples, ", "))
		fmt.Fprintf(w, "%-8s  e.g. %s\n", "", rc.ExampleDetail)
	}
}
