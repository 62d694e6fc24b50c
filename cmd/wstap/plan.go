package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/wstap/wstap/internal/jmeter"
)

func init() {
	register("plan", "check a JMeter test plan (.jmx): keep-alive, answers to pings, upgrade headers", runPlan)
}

const planHelp = `Usage: wstap plan FILE.jmx [--idle 60s] [--json]

Reads a JMeter test plan and, per thread group, lists the WebSocket samplers
of the Doornbosch plugin (eu.luminis.jmeter.wssampler.*) in order with the
frame filters, Header Manager headers and timers in their scope, works out how
long a connection stays silent and how late the plan can answer a server's
ping, and names what is wrong:

  plan-pings-unanswered              no Ping/Pong Frame Filter with replyToPing in scope
  plan-pings-discarded               a Ping/Pong Frame Filter drops pings without replying
  plan-pongs-late                    pings answered only while a sampler reads; the gap between reads
  plan-no-keepalive                  nothing sent for longer than --idle
  plan-subprotocol-missing           an upgrade without Sec-WebSocket-Protocol
  plan-token-shared                  one literal Authorization for every thread
  plan-new-connection-each-iteration createNewConnection (or an open) inside a loop

Timers count at their longest (a Gaussian timer at offset + 3 deviations), a
single read at its read timeout. Disabled elements are skipped; elements it
does not know are listed; ${variables} are kept as written. Authorization
values are shown redacted.

Examples:
  wstap plan chat.jmx
  wstap plan chat.jmx --idle 30s          the platform drops sessions idle for 30 s
  wstap plan chat.jmx --json | jq '.thread_groups[].findings'

Flags:
`

func runPlan(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	idle := fs.Duration("idle", 60*time.Second, "the platform's idle `timeout`: a connection silent for longer breaks plan-no-keepalive")
	asJSON := fs.Bool("json", false, "print the thread groups, samplers and findings as JSON")
	files, code, ok := parseWithOperands(fs, "plan", planHelp, args, stdout, stderr)
	if !ok {
		return code
	}
	switch {
	case len(files) != 1:
		return usageError(stderr, "plan", "want one FILE.jmx, got %d: %q", len(files), files)
	case *idle <= 0:
		return usageError(stderr, "plan", "--idle %s: want a positive duration", *idle)
	}
	p, err := jmeter.ReadFile(files[0])
	if err != nil {
		fmt.Fprintf(stderr, "wstap plan: %v\n", err)
		return 2
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(jmeter.Judge(p, *idle)); err != nil {
			fmt.Fprintf(stderr, "wstap plan: writing JSON: %v\n", err)
			return 1
		}
		return 0
	}
	writePlan(stdout, p, *idle)
	return 0
}

// writePlan prints the plan as text: per thread group its summary, its
// samplers in order with their scope, and its findings.
func writePlan(w io.Writer, p *jmeter.Plan, idle time.Duration) {
	fmt.Fprintf(w, "%s: test plan %q, %d thread group(s)\n", p.File, p.Name, len(p.ThreadGroups))
	for _, u := range p.Unknown {
		fmt.Fprintf(w, "  unknown element outside thread groups: %s\n", u)
	}
	for _, tg := range p.ThreadGroups {
		fmt.Fprintf(w, "\nThread group %s\n", tg.Summary())
		for i, s := range tg.Samplers() {
			writeSampler(w, i+1, s)
		}
		fs := jmeter.CheckGroup(tg, idle)
		if len(fs) == 0 {
			fmt.Fprintln(w, "  findings: none")
		}
		for _, f := range fs {
			fmt.Fprintf(w, "  %s: %s\n", f.Rule, f.Detail)
		}
	}
}

func writeSampler(w io.Writer, i int, s *jmeter.Sampler) {
	where := ""
	if len(s.In) > 0 {
		where = "  in " + strings.Join(s.In, " > ")
	}
	if s.Kind == jmeter.KindUnknown {
		fmt.Fprintf(w, "  %2d. unknown %s %q, not judged%s\n", i, s.Class, s.Name, where)
		return
	}
	fmt.Fprintf(w, "  %2d. %s %q%s\n", i, s.Kind, s.Name, where)
	var parts []string
	if s.NewConnection {
		scheme := "ws"
		if s.TLS {
			scheme = "wss"
		}
		parts = append(parts, fmt.Sprintf("new connection %s://%s:%s%s, connect timeout %s ms", scheme, s.Server, s.Port, s.Path, s.ConnectTimeout))
	}
	if s.ReadTimeout != "" {
		parts = append(parts, "read timeout "+string(s.ReadTimeout)+" ms")
	}
	for _, f := range s.Filters {
		parts = append(parts, fmt.Sprintf("filter %q (pings: %s)", f.Name, f.Pings))
	}
	for _, h := range s.Headers {
		parts = append(parts, "header "+h.Name+": "+h.Shown())
	}
	for _, t := range s.Timers {
		parts = append(parts, fmt.Sprintf("timer %s %q up to %g s", strings.TrimSuffix(t.Class, "Timer"), t.Name, t.MaxSeconds()))
	}
	for _, p := range parts {
		fmt.Fprintf(w, "        %s\n", p)
	}
}
