package report

import "iter"

// allPoints yields the TLS points of every run, run after run.
func allPoints(points [][]tlsPoint) iter.Seq[tlsPoint] {
	return func(yield func(tlsPoint) bool) {
		for _, pts := range points {
			for _, p := range pts {
				if !yield(p) {
					return
				}
			}
		}
	}
}

// countPoints counts the TLS points of every run.
func countPoints(points [][]tlsPoint) int {
	n := 0
	for _, pts := range points {
		n += len(pts)
	}
	return n
}
