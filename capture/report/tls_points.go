package report

import (
	"iter"
	"time"
)

// tlsRunPoints are the TLS points of one run: the successful handshakes of
// each leg by their time alone (a million sessions have two million), the
// failures and renegotiations whole.
type tlsRunPoints struct {
	other []tlsPoint
	okAt  [2][]int64 // Unix ns; [0] the client leg, [1] the upstream's
}

// add keeps p; a successful handshake's concurrency is found as it is
// yielded, the others' is set by summarizeTLS.
func (t *tlsRunPoints) add(p tlsPoint) {
	if p.failed || p.reneg {
		t.other = append(t.other, p)
		return
	}
	leg := 1
	if p.client {
		leg = 0
	}
	t.okAt[leg] = append(t.okAt[leg], nanos(p.at))
}

// allPoints yields the TLS points of every run, the successful handshakes
// with their concurrency in open.
func allPoints(points []tlsRunPoints, open *openTimes) iter.Seq[tlsPoint] {
	return func(yield func(tlsPoint) bool) {
		for _, pts := range points {
			for _, p := range pts.other {
				if !yield(p) {
					return
				}
			}
			for leg, ats := range pts.okAt {
				for _, at := range ats {
					p := tlsPoint{at: time.Unix(0, at).UTC(), conc: int32(open.at(at)), client: leg == 0}
					if !yield(p) {
						return
					}
				}
			}
		}
	}
}

// countPoints counts the TLS points of every run.
func countPoints(points []tlsRunPoints) int {
	n := 0
	for _, pts := range points {
		n += len(pts.other) + len(pts.okAt[0]) + len(pts.okAt[1])
	}
	return n
}
