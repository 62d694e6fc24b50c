package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/wstap/wstap/capture/record"
)

//go:embed report_html.tmpl
var reportHTMLText string

// reportHTML renders report.html: one self-contained page, charts drawn as
// inline SVG on the server, no script, no font or file from the network.
var reportHTML = template.Must(template.New("report").Funcs(template.FuncMap{
	"int":     groupInt,
	"int64":   func(n int64) string { return groupInt(int(n)) },
	"percent": percent,
	"seconds": secondsText,
	"ms":      msText,
	"clock":   func(t time.Time) string { return t.UTC().Format("15:04:05.000") },
	"stamp":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"join":    strings.Join,
	"counts":  sortedCounts,
	"add":     func(a, b float64) float64 { return a + b },
	"sub":     func(a, b float64) float64 { return a - b },
	"share":   func(n, of int) float64 { return float64(n) / float64(of) },
	"frac":    bandCell,
}).Parse(reportHTMLText))

// maxAbnormalRows caps the table of abnormal sessions.
const maxAbnormalRows = 200

// maxDropMarks caps the drop marks on the open-sessions chart.
const maxDropMarks = 1500

// WriteHTML writes report.html.
func (s *Summary) WriteHTML(w io.Writer) error {
	v := htmlView{S: s, Generated: time.Now(), Causes: causeViews(s.Causes)}
	v.Charts = []*svgChart{s.openChart(), s.pingChart()}
	v.Rows, v.RowsOf = s.abnormalRows()
	v.MultiRun = len(s.Runs) > 1
	v.TLSLegs = []tlsLegView{{string(record.SideClient), s.TLS.Client}, {string(record.SideUpstream), s.TLS.Upstream}}
	if err := reportHTML.Execute(w, v); err != nil {
		return fmt.Errorf("writing report.html: %w", err)
	}
	return nil
}

// htmlView is what the template sees.
type htmlView struct {
	S         *Summary
	Causes    []causeView
	Generated time.Time
	Charts    []*svgChart
	Rows      []abnormalRow
	RowsOf    int
	MultiRun  bool
	TLSLegs   []tlsLegView
}

// tlsLegView is one row of the TLS legs table.
type tlsLegView struct {
	Name string
	R    tlsLegReport
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH                     = 960.0, 260.0
	padLeft, padRight, padTop, padBott = 60.0, 16.0, 14.0, 40.0
	plotW, plotH                       = chartW - padLeft - padRight, chartH - padTop - padBott
)

// svgChart is one server-rendered chart.
type svgChart struct {
	ID, Title, Caption string
	W, H               float64
	Left, Top, Right   float64
	Bottom             float64
	Rects              []svgRect
	Paths              []svgPath
	Dots               []svgDot
	Lines              []svgLine
	XTicks, YTicks     []svgTick
	XLabel, YLabel     string
	Legend             []svgLegend
	Empty              string
}

type svgRect struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

type svgPath struct{ D, Class string }

type svgDot struct {
	X, Y, R float64
	Class   string
	Title   string
}

type svgLine struct {
	X1, Y1, X2, Y2 float64
	Class, Label   string
	// LX, LY place the label: right of a vertical line, above a horizontal one.
	LX, LY float64
}

// labelAt places a line's label beside it.
func (l svgLine) labelAt(top float64) svgLine {
	if l.X1 == l.X2 {
		l.LX, l.LY = l.X1+4, top+10
	} else {
		l.LX, l.LY = l.X1+6, l.Y1-5
	}
	return l
}

type svgTick struct {
	Pos   float64
	Label string
}

type svgLegend struct{ Class, Label string }

func newChart(id, title, caption string) *svgChart {
	return &svgChart{ID: id, Title: title, Caption: caption, W: chartW, H: chartH,
		Left: padLeft, Top: padTop, Right: padLeft + plotW, Bottom: padTop + plotH}
}

// r1 rounds to a tenth of a unit: enough for a screen, short in the file.
func r1(f float64) float64 { return math.Round(f*10) / 10 }

// linear maps [lo, hi] onto [a, b].
func linear(lo, hi, a, b float64) func(float64) float64 {
	if hi <= lo {
		hi = lo + 1
	}
	return func(v float64) float64 { return r1(a + (v-lo)/(hi-lo)*(b-a)) }
}

// niceStep is a 1, 2 or 5 × 10^k step giving about n ticks over span.
func niceStep(span float64, n int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// valueTicks puts ticks on [0, hi] for an axis mapped by scale.
func valueTicks(hi float64, scale func(float64) float64, label func(float64) string) []svgTick {
	step := niceStep(hi, 5)
	var t []svgTick
	for v := 0.0; v <= hi*1.0001; v += step {
		t = append(t, svgTick{scale(v), label(v)})
	}
	return t
}

// timeTicks puts clock ticks on [from, to].
func timeTicks(from, to time.Time, scale func(float64) float64) []svgTick {
	span := to.Sub(from)
	step := time.Second
	for _, d := range []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second,
		15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute,
		10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 24 * time.Hour} {
		step = d
		if span/d <= 8 {
			break
		}
	}
	format := "15:04:05"
	if step >= time.Minute {
		format = "15:04"
	}
	var t []svgTick
	for at := from.Truncate(step); !at.After(to); at = at.Add(step) {
		if at.Before(from) {
			continue
		}
		t = append(t, svgTick{scale(float64(at.Sub(from))), at.UTC().Format(format)})
	}
	return t
}

// yMax leaves a little headroom above the largest value.
func yMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	step := niceStep(v, 5)
	return math.Ceil(v/step) * step
}

// openChart: open upgraded sessions over time, with a mark at each 1006.
func (s *Summary) openChart() *svgChart {
	c := newChart("chart-open", "Open sessions over time",
		"Upgraded sessions open across all runs; each red mark is a session that ended in 1006, at its end and the concurrency then.")
	c.XLabel, c.YLabel = "time (UTC)", "open sessions"
	from, to, ok := s.open.span()
	if !ok {
		c.Empty = "No upgraded sessions."
		return c
	}
	span := float64(to - from)
	x := linear(0, span, c.Left, c.Right)
	top := yMax(float64(s.Concurrency.Peak))
	y := linear(0, top, c.Bottom, c.Top)
	var d strings.Builder
	fmt.Fprintf(&d, "M%v %v", c.Left, c.Bottom)
	for col, n := range s.openPeaks(from, span) {
		fmt.Fprintf(&d, "V%vH%v", y(float64(n)), r1(c.Left+float64(col+1)))
	}
	fmt.Fprintf(&d, "V%vZ", c.Bottom)
	c.Paths = append(c.Paths, svgPath{d.String(), "area"})
	fromT, toT := time.Unix(0, from).UTC(), time.Unix(0, to).UTC()
	stride := max(1, (len(s.drops)+maxDropMarks-1)/maxDropMarks)
	for i := 0; i < len(s.drops); i += stride {
		ref := s.drops[i]
		c.Dots = append(c.Dots, svgDot{X: x(float64(ref.endTime().Sub(fromT))), Y: y(float64(ref.conc)), R: 2.5, Class: "drop",
			Title: fmt.Sprintf("%s: 1006 at %s, %d open", ref.id, ref.endTime().Format("15:04:05.000"), ref.conc)})
	}
	c.XTicks = timeTicks(fromT, toT, func(v float64) float64 { return x(v) })
	c.YTicks = valueTicks(top, y, func(v float64) string { return groupInt(int(v)) })
	c.Legend = []svgLegend{{"area", "open sessions"}, {"drop", "1006"}}
	return c
}

// openPeaks is, per pixel column of the open-sessions chart, the most
// sessions open in it.
func (s *Summary) openPeaks(from int64, span float64) []int {
	cols := int(plotW)
	peak := make([]int, cols+1)
	col, last := 0, 0
	s.open.walk(func(at int64, open int) {
		d := float64(at - from)
		for col <= cols && d > float64(col+1)/float64(cols)*span {
			col++
			if col <= cols {
				peak[col] = last
			}
		}
		if col > cols {
			return
		}
		last = open
		peak[col] = max(peak[col], last)
	})
	for col++; col <= cols; col++ {
		peak[col] = last
	}
	return peak
}

// histogram is a stacked histogram of series over [0, hi] in n bins.
type histogram struct {
	hi     float64
	counts [][]int // [series][bin]
}

func newHistogram(hi float64, n int, series ...[]float64) histogram {
	h := histogram{hi: hi, counts: make([][]int, len(series))}
	for si, vals := range series {
		h.counts[si] = make([]int, n)
		for _, v := range vals {
			b := int(v / hi * float64(n))
			h.counts[si][min(max(b, 0), n-1)]++
		}
	}
	return h
}

// draw stacks the series' bars into c; label writes a bin's lower edge.
func (h histogram) draw(c *svgChart, classes, names []string, label func(float64) string) {
	n := len(h.counts[0])
	top := 0
	for b := range n {
		sum := 0
		for si := range h.counts {
			sum += h.counts[si][b]
		}
		top = max(top, sum)
	}
	x := linear(0, h.hi, c.Left, c.Right)
	yTop := yMax(float64(top))
	y := linear(0, yTop, c.Bottom, c.Top)
	bw := plotW / float64(n)
	for b := range n {
		base := 0
		for si := range h.counts {
			k := h.counts[si][b]
			if k == 0 {
				continue
			}
			lo := h.hi * float64(b) / float64(n)
			c.Rects = append(c.Rects, svgRect{X: r1(c.Left + float64(b)*bw + 1), Y: y(float64(base + k)),
				W: r1(bw - 2), H: r1(y(float64(base)) - y(float64(base+k))), Class: classes[si],
				Title: fmt.Sprintf("%s: %d (%s – %s)", names[si], k, label(lo), label(lo+h.hi/float64(n)))})
			base += k
		}
	}
	c.XTicks = valueTicks(h.hi, x, label)
	c.YTicks = valueTicks(yTop, y, func(v float64) string { return groupInt(int(v)) })
	for si := range classes {
		c.Legend = append(c.Legend, svgLegend{classes[si], names[si]})
	}
}

// pingChart: each session's median ping interval, per direction.
func (s *Summary) pingChart() *svgChart {
	c := newChart("chart-ping", "Ping intervals",
		"Upgraded sessions by their median ping interval: pings sent by the client, and by the upstream. A client interval longer than an idle timeout lets the platform drop the session.")
	c.XLabel, c.YLabel = "median ping interval (s)", "sessions"
	var cl, up []float64
	for _, r := range s.runs {
		t := &r.tally.ka
		cl = append(append(cl, t.c2uInt...), t.chartCl...)
		up = append(append(up, t.u2cInt...), t.chartUp...)
	}
	hi := 0.0
	for _, v := range cl {
		hi = max(hi, v)
	}
	for _, v := range up {
		hi = max(hi, v)
	}
	idle := s.Keepalive.IdleTimeoutMS
	hi = max(hi, idle)
	if len(cl)+len(up) == 0 {
		c.Empty = "No session sent two pings or more in either direction."
		return c
	}
	hi = yMax(hi/1000*1.05+0.001) * 1000
	newHistogram(hi, 40, cl, up).draw(c, []string{"client", "upstream"},
		[]string{"client → upstream", "upstream → client"}, secondsAxis)
	if idle > 0 {
		x := linear(0, hi, c.Left, c.Right)(idle)
		c.Lines = append(c.Lines, svgLine{x, c.Top, x, c.Bottom, "inference", "idle timeout " + secondsText(idle), 0, 0}.labelAt(c.Top))
	}
	return c
}

func secondsAxis(ms float64) string {
	return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.1f", ms/1000), "0"), ".")
}

// abnormalRow is one row of the abnormal sessions table.
type abnormalRow struct {
	Run      int
	Rec      *record.Session
	End      time.Time
	Conc     int
	Timeline *svgChart
}

// abnormalRows lists the first sessions that ended in 1006, in end order.
func (s *Summary) abnormalRows() ([]abnormalRow, int) {
	var rows []abnormalRow
	for _, ref := range s.drops[:min(len(s.drops), maxAbnormalRows)] {
		for i, r := range s.runs {
			if rec := r.cands.recs[ref.session]; rec != nil {
				rows = append(rows, abnormalRow{Run: i + 1, Rec: rec, End: endTime(rec), Conc: ref.conc,
					Timeline: sessionTimeline(rec, endTime(rec), r.timelines[rec.ID])})
				break
			}
		}
	}
	return rows, len(s.drops)
}

// sessionTimeline draws one session: handshake, pings and pongs each way,
// close frames, the last frame, the silence after it and the TCP end.
func sessionTimeline(r *record.Session, end time.Time, events []timelineEvent) *svgChart {
	c := &svgChart{W: 420, H: 40, Left: 6, Right: 414, Top: 6, Bottom: 34}
	span := float64(end.Sub(r.Start))
	x := linear(0, max(span, 1), c.Left, c.Right)
	at := func(t time.Time) float64 { return x(min(max(float64(t.Sub(r.Start)), 0), span)) }
	mid := 20.0
	c.Lines = append(c.Lines, svgLine{X1: c.Left, Y1: mid, X2: c.Right, Y2: mid, Class: "life"})
	if sil := r.Keepalive.SilenceBeforeEnd; sil > 0 {
		from := end.Add(-time.Duration(sil * float64(time.Millisecond)))
		c.Rects = append(c.Rects, svgRect{X: at(from), Y: mid - 9, W: r1(at(end) - at(from)), H: 18, Class: "silence",
			Title: "silent " + secondsText(sil) + " before the end"})
		c.Lines = append(c.Lines, svgLine{X1: at(from), Y1: mid - 10, X2: at(from), Y2: mid + 10, Class: "lastframe", Label: "last frame"})
	}
	hs := r.Start.Add(time.Duration(r.Handshake.LatencyMS * float64(time.Millisecond)))
	c.Dots = append(c.Dots, svgDot{X: at(hs), Y: mid, R: 4, Class: "handshake",
		Title: fmt.Sprintf("handshake %d after %s ms", r.Handshake.Status, msText(r.Handshake.LatencyMS))})
	for _, e := range events {
		up := e.clientSent // sent by the client: drawn above the line
		y := mid + 7
		if up {
			y = mid - 7
		}
		if !e.pong {
			c.Dots = append(c.Dots, svgDot{X: at(e.at), Y: y, R: 2.5, Class: "ping " + dirClass(up),
				Title: fmt.Sprintf("ping %s at %s", dirText(up), e.at.UTC().Format("15:04:05.000"))})
			continue
		}
		title := fmt.Sprintf("pong %s at %s", dirText(up), e.at.UTC().Format("15:04:05.000"))
		if e.rttMS > 0 {
			title += fmt.Sprintf(", RTT %s ms", msText(e.rttMS))
		}
		c.Dots = append(c.Dots, svgDot{X: at(e.at), Y: y, R: 2.5, Class: "pong " + dirClass(up), Title: title})
	}
	for _, cf := range []struct {
		f  *record.CloseFrame
		by string
	}{{r.Close.Client, "client"}, {r.Close.Upstream, "upstream"}} {
		if cf.f != nil {
			c.Rects = append(c.Rects, svgRect{X: at(cf.f.At) - 3, Y: mid - 3, W: 6, H: 6, Class: "close",
				Title: fmt.Sprintf("close %d %q by the %s", cf.f.Code, cf.f.Reason, cf.by)})
		}
	}
	c.Lines = append(c.Lines, svgLine{X1: at(end), Y1: mid - 12, X2: at(end), Y2: mid + 12, Class: "tcpend",
		Label: fmt.Sprintf("TCP end: %s %s", r.End.First, r.End.How)})
	return c
}

func dirClass(clientSent bool) string {
	if clientSent {
		return "client"
	}
	return "upstream"
}

func dirText(clientSent bool) string {
	if clientSent {
		return "client → upstream"
	}
	return "upstream → client"
}

// sortedCounts lists a count map largest first, for the template.
func sortedCounts(m map[string]int) []verdictCount {
	var out []verdictCount
	for k, v := range m {
		out = append(out, verdictCount{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Verdict < out[j].Verdict
	})
	return out
}
