package report

import (
	"fmt"
	"io"
	"strings"
)

// PlanCheck is what `wstap plan` found in the JMeter plan that drove the run,
// put beside the run's causes by `wstap report --plan`.
type PlanCheck struct {
	File         string           `json:"file"`
	ThreadGroups []PlanGroupCheck `json:"thread_groups"`
	// Beside pairs a plan finding with the cause it explains.
	Beside []string `json:"beside"`
}

// PlanGroupCheck is one thread group: its one-line summary and findings.
type PlanGroupCheck struct {
	Name     string        `json:"name"`
	Summary  string        `json:"summary"`
	Findings []PlanFinding `json:"findings"`
	// AnswerGapS is how late the group can answer a ping, SendGapS the
	// longest it sends nothing (seconds; -1 for never).
	AnswerGapS float64 `json:"answer_gap_s"`
	SendGapS   float64 `json:"send_gap_s"`
}

// PlanFinding is one rule a thread group breaks.
type PlanFinding struct {
	Rule   string `json:"rule"`
	Detail string `json:"detail"`
}

// AttachPlan puts a plan's findings beside the causes and says which cause
// each explains.
func (s *Summary) AttachPlan(p *PlanCheck) {
	s.Plan = p
	p.Beside = []string{}
	byCause := map[string]*Cause{}
	for _, c := range s.Causes {
		if byCause[c.Cause] == nil {
			byCause[c.Cause] = c
		}
	}
	for _, g := range p.ThreadGroups {
		for _, f := range g.Findings {
			if line := besideLine(g, f, byCause); line != "" {
				p.Beside = append(p.Beside, line)
			}
		}
	}
}

// besideLine pairs one plan finding with the cause it would produce.
func besideLine(g PlanGroupCheck, f PlanFinding, by map[string]*Cause) string {
	tg := fmt.Sprintf("thread group %q", g.Name)
	switch f.Rule {
	case "plan-pongs-late", "plan-pings-unanswered", "plan-pings-discarded":
		if c := by[CausePing]; c != nil {
			late := "never"
			if g.AnswerGapS >= 0 {
				late = fmt.Sprintf("only between reads, up to %s late", secondsText(g.AnswerGapS*1000))
			}
			return fmt.Sprintf("%s answers pings %s; the upstream dropped %s %s after an unanswered ping (ping-timeout)",
				tg, late, countText(c.Sessions, "session"), secondsText(c.Seconds*1000))
		}
	case "plan-no-keepalive":
		if c := by[CauseIdle]; c != nil {
			return fmt.Sprintf("%s sends nothing for up to %s; the upstream dropped %s after %s of client silence (idle-timeout)",
				tg, gapText(g.SendGapS), countText(c.Sessions, "session"), secondsText(c.Seconds*1000))
		}
	case "plan-token-shared":
		if c := by[CauseCap]; c != nil && c.Scope == ScopeCredential {
			return fmt.Sprintf("%s sends one Authorization for every thread; the upstream capped credential %s at %s concurrent sessions (concurrency-cap)",
				tg, c.Credential, groupInt(c.Level))
		}
	case "plan-new-connection-each-iteration":
		if c := by[CauseCap]; c != nil {
			return fmt.Sprintf("%s opens a new connection every iteration; a cap of %s concurrent sessions dropped %s (concurrency-cap)",
				tg, groupInt(c.Level), countText(c.Sessions, "session"))
		}
	}
	return ""
}

func gapText(s float64) string {
	if s < 0 {
		return "ever"
	}
	return secondsText(s * 1000)
}

// writePlanText writes the plan section of the text report.
func (s *Summary) writePlanText(w io.Writer) {
	p := s.Plan
	if p == nil {
		return
	}
	fmt.Fprintf(w, "\nThe JMeter plan (%s)\n", p.File)
	for _, g := range p.ThreadGroups {
		fmt.Fprintf(w, "  %s\n", g.Summary)
		for _, f := range g.Findings {
			fmt.Fprintf(w, "    %-36s %s\n", f.Rule, strings.Join(wrap(f.Detail, 80), "\n"+strings.Repeat(" ", 41)))
		}
	}
	for _, b := range p.Beside {
		fmt.Fprintf(w, "  beside the run: %s\n", b)
	}
}
