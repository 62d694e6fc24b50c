package report

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// writeCausesText writes one paragraph per cause, largest first, each with
// its figure, then the seven explanations.
func writeCausesText(w io.Writer, abnormal int, causes []*Cause, ex []Explanation) {
	if abnormal == 0 {
		fmt.Fprintln(w, "Causes of 1006: none — no session ended in 1006")
	} else {
		fmt.Fprintf(w, "Causes of 1006 (%s sessions, each attributed to one cause)\n", groupInt(abnormal))
	}
	for _, c := range causes {
		fmt.Fprintf(w, "\n  %s%s — %s\n", c.Cause, causeQualifier(c), causeCount(c))
		for _, line := range wrap(c.Evidence, 92) {
			fmt.Fprintf(w, "    %s\n", line)
		}
		if len(c.Examples) > 0 {
			fmt.Fprintf(w, "    e.g. %s\n", strings.Join(c.Examples, ", "))
		}
		if c.figure != nil {
			writeFigureText(w, c.figure)
		}
	}
	fmt.Fprintln(w, "\nThe seven explanations")
	for _, e := range ex {
		fmt.Fprintf(w, "  %d. %-16s %-10s ", e.N, e.Name, e.Verdict)
		lines := wrap(e.Detail, 72)
		for i, l := range lines {
			if i > 0 {
				fmt.Fprint(w, strings.Repeat(" ", 33))
			}
			fmt.Fprintln(w, l)
		}
	}
}

// causeQualifier names a cause's scope and value: " (scope credential
// sha256:…, level 20)", " (5.0 s)".
func causeQualifier(c *Cause) string {
	switch {
	case c.Cause == CauseCap:
		q := " (scope " + c.Scope
		if c.Credential != "" {
			q += " " + c.Credential
		}
		if c.Target != "" {
			q += " " + c.Target
		}
		return fmt.Sprintf("%s, level %s)", q, groupInt(c.Level))
	case c.Seconds > 0:
		return fmt.Sprintf(" (%s)", secondsText(c.Seconds*1000))
	}
	return ""
}

func causeCount(c *Cause) string {
	s := countText(c.Sessions, "session")
	if c.Rejected > 0 {
		s += fmt.Sprintf(" + %s refused", groupInt(c.Rejected))
	}
	return s
}

// writeFigureText draws a figure as rows of bars: one row a bin, the cause's
// sessions as '#', the spared ones as '.', the inferred line marked.
func writeFigureText(w io.Writer, fig *causeFigure) {
	peak := 1
	for _, b := range fig.Bins {
		peak = max(peak, b.Hit, b.Other)
	}
	fmt.Fprintf(w, "    %s: # %s, . %s; ▶ beyond the %s\n", fig.XLabel, fig.HitLabel, fig.OtherLabel, fig.LineLabel)
	for _, b := range fig.Bins {
		if b.Hit == 0 && b.Other == 0 {
			continue
		}
		mark := " "
		if b.Lo >= fig.Line {
			mark = "▶" // beyond the line
		}
		fmt.Fprintf(w, "    %9s %s %-22s %5d  %-22s %5d\n", binText(b), mark,
			strings.Repeat("#", scaled(b.Hit, peak)), b.Hit, strings.Repeat(".", scaled(b.Other, peak)), b.Other)
	}
}

// binText names a bin: whole numbers "233–240" (the bins of a cap hold
// whole counts, edges on halves), else "4.8–5.2".
func binText(b figBin) string {
	if math.Mod(b.Hi, 1) == 0.5 || math.Mod(b.Hi, 1) == 0 && math.Mod(b.Lo, 1) == 0 && b.Hi-b.Lo >= 1 {
		return fmt.Sprintf("%.0f–%.0f", math.Ceil(b.Lo), math.Ceil(b.Hi)-1)
	}
	if b.Hi-b.Lo < 0.2 {
		return fmt.Sprintf("%.2f–%.2f", b.Lo, b.Hi)
	}
	return fmt.Sprintf("%.1f–%.1f", b.Lo, b.Hi)
}

func scaled(n, peak int) int {
	if n == 0 {
		return 0
	}
	return max(1, n*22/peak)
}

// wrap breaks text into lines of at most width runes at spaces.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && len([]rune(line))+1+len([]rune(word)) > width {
			lines = append(lines, line)
			line = word
			continue
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
