package report

// TEMPORARY: stand-ins for helpers that live in the moved report code.

import (
	"fmt"
	"sort"
	"strconv"
)

type Quantiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	Max float64 `json:"max"`
}

func quantilesOf(v []float64) Quantiles {
	if len(v) == 0 {
		return Quantiles{}
	}
	v = append([]float64(nil), v...)
	sort.Float64s(v)
	return Quantiles{N: len(v), P50: rankValue(v, 0.5), P90: rankValue(v, 0.9), Max: v[len(v)-1]}
}

func rankValue(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	i := int(pos)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (pos-float64(i))*(sorted[i+1]-sorted[i])
}

func groupInt(n int) string { return strconv.Itoa(n) }

func secondsText(ms float64) string {
	if ms >= 10000 {
		return fmt.Sprintf("%.0f s", ms/1000)
	}
	return fmt.Sprintf("%.1f s", ms/1000)
}

func spanText(lo, hi float64) string {
	format := "%.1f"
	if hi >= 10000 {
		format = "%.0f"
	}
	l, h := fmt.Sprintf(format, lo/1000), fmt.Sprintf(format, hi/1000)
	if l == h {
		return l + " s"
	}
	return l + "–" + h + " s"
}
