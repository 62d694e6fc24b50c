package report

import "fmt"

// causeView is one cause's card in report.html: its title, its evidence and
// its figure.
type causeView struct {
	C     *Cause
	Title string
	Chart *svgChart
}

func causeViews(causes []*Cause) []causeView {
	out := make([]causeView, len(causes))
	for i, c := range causes {
		out[i] = causeView{C: c, Title: c.Cause + causeQualifier(c)}
		if c.figure != nil {
			out[i].Chart = figureChart(fmt.Sprintf("chart-cause-%d", i), c.figure)
		}
	}
	return out
}

// figureChart draws a cause's figure: the cause's sessions and the spared
// ones per bin, side by side, and the inferred line.
func figureChart(id string, fig *causeFigure) *svgChart {
	c := newChart(id, "", "")
	c.XLabel, c.YLabel = fig.XLabel, "sessions"
	if len(fig.Bins) == 0 {
		c.Empty = "No sessions to draw."
		return c
	}
	top := 1
	for _, b := range fig.Bins {
		top = max(top, b.Hit, b.Other)
	}
	lo, hi := fig.Bins[0].Lo, fig.Bins[len(fig.Bins)-1].Hi
	x := linear(lo, hi, c.Left, c.Right)
	yTop := yMax(float64(top))
	y := linear(0, yTop, c.Bottom, c.Top)
	for _, b := range fig.Bins {
		w := (x(b.Hi) - x(b.Lo)) / 2
		for k, bar := range []struct {
			n     int
			class string
			label string
		}{{b.Hit, "drop", fig.HitLabel}, {b.Other, "ok", fig.OtherLabel}} {
			if bar.n == 0 {
				continue
			}
			c.Rects = append(c.Rects, svgRect{X: r1(x(b.Lo) + float64(k)*w + 0.5), Y: y(float64(bar.n)), W: r1(max(w-1, 1)),
				H: r1(c.Bottom - y(float64(bar.n))), Class: bar.class, Title: fmt.Sprintf("%s: %d (%s)", bar.label, bar.n, binText(b))})
		}
	}
	lx := x(fig.Line)
	c.Lines = append(c.Lines, svgLine{lx, c.Top, lx, c.Bottom, "threshold", fig.LineLabel, 0, 0}.labelAt(c.Top))
	c.XTicks = valueTicks(hi, x, func(v float64) string { return trimZero(v) })
	c.YTicks = valueTicks(yTop, y, func(v float64) string { return groupInt(int(v)) })
	c.Legend = []svgLegend{{"drop", fig.HitLabel}, {"ok", fig.OtherLabel}}
	return c
}

func trimZero(v float64) string {
	s := fmt.Sprintf("%.1f", v)
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		return s[:len(s)-2]
	}
	return s
}
