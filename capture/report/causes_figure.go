package report

import (
	"math"
	"strings"
)

// causeFigure is the one figure of a cause: the variable it acts on, binned,
// with the cause's sessions and the sessions it spared side by side, and the
// inferred line (the cap's level, the timeout).
type causeFigure struct {
	XLabel string  `json:"x_label"`
	Line   float64 `json:"line"`
	// LineLabel names the line: "level 232", "idle timeout 5.0 s".
	LineLabel string   `json:"line_label"`
	Bins      []figBin `json:"bins"`
	// HitLabel and OtherLabel name the two bars.
	HitLabel   string `json:"hit_label"`
	OtherLabel string `json:"other_label"`
}

// figBin counts the sessions in [Lo, Hi).
type figBin struct {
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
	Hit   int     `json:"hit"`
	Other int     `json:"other"`
}

const figureBins = 12

// capFigure: sessions of the cap's scope by concurrency at open, dropped or
// refused by the cap against let live.
func capFigure(c *capFit, all []*facts) *causeFigure {
	in := map[*facts]bool{}
	for _, f := range c.members {
		in[f] = true
	}
	var hit, other []float64
	for _, f := range all {
		if !f.upgraded && !in[f] {
			continue
		}
		if c.scope == ScopeCredential && f.credential != c.key || c.scope == ScopeTarget && f.target != c.key {
			continue
		}
		x := float64(capX(c.scope, f))
		if in[f] {
			hit = append(hit, x)
		} else {
			other = append(other, x)
		}
	}
	fig := binFigure(hit, other, float64(c.level)+0.5, 1)
	fig.XLabel, fig.HitLabel, fig.OtherLabel = "sessions open in scope at open", "dropped or refused", "let live"
	fig.LineLabel = "level " + groupInt(c.level)
	return fig
}

// timerFigure: the timer's variable at the end of its drops, against the
// largest value it reached in the sessions it spared, in seconds.
func timerFigure(t *timerFit, c *Cause, all []*facts) *causeFigure {
	in := map[*facts]bool{}
	for _, f := range c.members {
		in[f] = true
	}
	var hit, other []float64
	for _, f := range all {
		switch {
		case in[f]:
			hit = append(hit, t.kind.at(f)/1000)
		case f.upgraded:
			if o := t.kind.outlived(f); o >= 0 {
				other = append(other, o/1000)
			}
		}
	}
	fig := binFigure(hit, other, t.estimate/1000, 0)
	fig.HitLabel, fig.OtherLabel = "dropped", "spared (longest reached)"
	fig.LineLabel = strings.ReplaceAll(t.kind.cause, "-", " ") + " " + secondsText(t.estimate)
	switch t.kind.cause {
	case CauseIdle:
		fig.XLabel = "client silence before the end, pongs not counted (s)"
	case CausePing:
		fig.XLabel = "time from the unanswered ping to the drop; spared: slowest pong (s)"
	default:
		fig.XLabel = "session age (s)"
	}
	return fig
}

// binFigure bins two samples over [0, max] in about figureBins equal bins
// (whole numbers when step is 1), with a bin edge on the line so that no
// bin straddles it.
func binFigure(hit, other []float64, line, step float64) *causeFigure {
	top := line
	for _, v := range append(append([]float64{}, hit...), other...) {
		top = max(top, v)
	}
	width := top / figureBins
	if step > 0 {
		width = max(step, math.Ceil(width))
	}
	if width <= 0 {
		width = 1
	}
	origin := math.Mod(line, width) - width // an edge falls on the line
	n := int((top-origin)/width) + 1
	fig := &causeFigure{Line: line, Bins: make([]figBin, n)}
	for i := range fig.Bins {
		fig.Bins[i] = figBin{Lo: max(0, origin+float64(i)*width), Hi: origin + float64(i+1)*width}
	}
	put := func(v float64, hit bool) {
		i := min(n-1, max(0, int((v-origin)/width)))
		if hit {
			fig.Bins[i].Hit++
		} else {
			fig.Bins[i].Other++
		}
	}
	for _, v := range hit {
		put(v, true)
	}
	for _, v := range other {
		put(v, false)
	}
	if len(fig.Bins) > 0 && fig.Bins[0].Hi <= 0 {
		fig.Bins = fig.Bins[1:]
	}
	return fig
}
