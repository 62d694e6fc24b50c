package load

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Result is what a run measured.
type Result struct {
	URL      string
	Sessions int // sessions asked for
	Opened   int // sessions that got a 101
	// Failed counts sessions that never opened, by reason: dial, proxy, tls,
	// handshake, http-status:<code>, canceled (the run was interrupted
	// while it dialed).
	Failed map[string]int
	// FailedExample is the first error of each reason in Failed.
	FailedExample map[string]string
	// Dropped1006 lists the opened sessions that ended without receiving a
	// close frame — what a client reports as close code 1006.
	Dropped1006 []Drop
	// CloseCodes counts, per opened session, the code of the close frame it
	// received: 1006 when none came, 1005 when it carried no code.
	CloseCodes map[int]int
	// Clean counts sessions whose close 1000 the server answered with a close frame.
	Clean int
	// ClosedByServer counts sessions the server closed first with a close frame.
	ClosedByServer int
	// Subprotocols counts the subprotocol the server selected per opened
	// session; "" when it selected none.
	Subprotocols  map[string]int
	MaxConcurrent int // the most sessions open at once

	PingsSent    int64 // the client's pings
	ServerPings  int64 // pings received from the server
	PongsSent    int64 // answers to them
	MessagesSent int64
	Echoes       int64         // echoes of this session's messages received and timed
	RTTP50       time.Duration // message round trip, 0 when no echo was timed
	RTTP99       time.Duration
	RTTMax       time.Duration

	OpenFileLimit uint64 // RLIMIT_NOFILE in force, 0 when unknown
	Interrupted   bool   // the context ended the run early
	Duration      time.Duration
}

// Drop is one session that ended without a close frame from the server.
type Drop struct {
	// After is how long after its 101 the session ended.
	After time.Duration
	// How the connection ended: "eof" (a FIN, or a TLS close_notify, with no
	// close frame), "reset" (an RST), "timeout" (no close frame within
	// CloseTimeout of the client's, or a frame cut off), "error" (any other).
	How string
	// Concurrent is the number of sessions of this run open when it ended,
	// itself included.
	Concurrent int
	// Closing is true when it happened after the client sent its close frame.
	Closing bool
}

// DropsByHow counts the drops by how the connection ended.
func (r *Result) DropsByHow() map[string]int {
	m := map[string]int{}
	for _, d := range r.Dropped1006 {
		m[d.How]++
	}
	return m
}

// FailedTotal is the number of sessions that never opened.
func (r *Result) FailedTotal() int {
	n := 0
	for _, v := range r.Failed {
		n += v
	}
	return n
}

// WriteText prints the result for a person, one aspect a line.
func (r *Result) WriteText(w io.Writer) {
	fmt.Fprintf(w, "target       %s\n", r.URL)
	fmt.Fprintf(w, "opened       %d of %d sessions (at most %d open at once)", r.Opened, r.Sessions, r.MaxConcurrent)
	if r.Interrupted {
		fmt.Fprint(w, ", interrupted")
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "failed       %d", r.FailedTotal())
	if len(r.Failed) > 0 {
		fmt.Fprintf(w, ": %s", counts(r.Failed))
	}
	fmt.Fprintln(w)
	for _, k := range slices.Sorted(maps.Keys(r.FailedExample)) {
		fmt.Fprintf(w, "               %s: %s\n", k, r.FailedExample[k])
	}

	fmt.Fprintf(w, "closed       %d clean (close 1000 answered), %d closed by the server", r.Clean, r.ClosedByServer)
	if len(r.CloseCodes) > 0 {
		fmt.Fprintf(w, "; close codes received: %s", counts(r.CloseCodes))
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "dropped 1006 %d", len(r.Dropped1006))
	if len(r.Dropped1006) > 0 {
		after := make([]time.Duration, len(r.Dropped1006))
		maxOpen := 0
		for i, d := range r.Dropped1006 {
			after[i] = d.After
			maxOpen = max(maxOpen, d.Concurrent)
		}
		slices.Sort(after)
		fmt.Fprintf(w, " without a close frame (%s), after p50 %s (min %s, max %s), up to %d open",
			counts(r.DropsByHow()), round(percentile(after, 0.50)), round(after[0]), round(after[len(after)-1]), maxOpen)
	}
	fmt.Fprintln(w)

	if len(r.Subprotocols) > 0 {
		sub := map[string]int{}
		for k, v := range r.Subprotocols {
			if k == "" {
				k = "(none)"
			}
			sub[k] = v
		}
		fmt.Fprintf(w, "subprotocol  %s\n", counts(sub))
	}
	fmt.Fprintf(w, "keep-alive   %d pings sent, %d server pings answered of %d\n", r.PingsSent, r.PongsSent, r.ServerPings)
	fmt.Fprintf(w, "messages     %d sent, %d echoes", r.MessagesSent, r.Echoes)
	if r.Echoes > 0 {
		fmt.Fprintf(w, ", RTT p50 %s, p99 %s, max %s", round(r.RTTP50), round(r.RTTP99), round(r.RTTMax))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "duration     %s", round(r.Duration))
	if r.OpenFileLimit > 0 {
		fmt.Fprintf(w, " (open-file limit %d)", r.OpenFileLimit)
	}
	fmt.Fprintln(w)
}

// counts prints a map as "k1 n1, k2 n2" in key order.
func counts[K int | string](m map[K]int) string {
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%v ×%d", k, m[k])
	}
	return b.String()
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// round keeps three significant figures or so of a duration for printing.
func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
