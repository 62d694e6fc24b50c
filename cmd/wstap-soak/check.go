package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/record"
)

// checker collects the verdict lines.
type checker struct {
	o       *options
	fl      *fleet
	smp     *sampler
	warmEnd time.Time
	runDir  string
	lines   []string
	failed  int
}

func (c *checker) add(name string, ok bool, detail string) {
	v := "PASS"
	if !ok {
		v = "FAIL"
		c.failed++
	}
	c.lines = append(c.lines, fmt.Sprintf("%s %-16s %s", v, name, detail))
}

// print writes the verdicts; it returns true when all passed.
func (c *checker) print(w io.Writer) bool {
	fmt.Fprintln(w, "\nchecks")
	for _, l := range c.lines {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintf(w, "%d of %d checks passed\n", len(c.lines)-c.failed, len(c.lines))
	return c.failed == 0
}

// holding are the samples taken after the warm-up while the sessions were held.
func (c *checker) holding() []sample {
	var out []sample
	holdEnd := c.smp.begin.Add(c.o.duration - 5*time.Second)
	for _, s := range c.smp.samples {
		if s.err == "" && !s.when.Before(c.warmEnd) && s.when.Before(holdEnd) {
			out = append(out, s)
		}
	}
	return out
}

// checkSamples: RSS flat after the warm-up (±10% of the first sample after
// it), goroutines = 2 × open sessions + a constant.
func (c *checker) checkSamples() {
	hold := c.holding()
	if len(hold) < 2 {
		c.add("rss flat", false, fmt.Sprintf("%d samples after the warm-up, need 2 (lengthen --duration)", len(hold)))
		c.add("goroutines", false, "too few samples")
		return
	}
	ref := hold[0].rss
	lo, hi := ref, ref
	for _, s := range hold {
		lo, hi = min(lo, s.rss), max(hi, s.rss)
	}
	dev := max(float64(hi-ref), float64(ref-lo)) / float64(ref)
	c.add("rss flat", dev <= 0.10, fmt.Sprintf("%d samples after the warm-up: %.1f MiB at first, %.1f–%.1f MiB, largest deviation %.1f%% (≤ 10%%)",
		len(hold), mib(ref), mib(lo), mib(hi), 100*dev))

	var spare []int64
	var minActive int64 = -1
	for _, s := range hold {
		spare = append(spare, s.spare())
		if minActive < 0 || s.active < minActive {
			minActive = s.active
		}
	}
	slices.Sort(spare)
	spread := spare[len(spare)-1] - spare[0]
	tol := int64(20 + c.o.sessions/100)
	c.add("goroutines", spread <= tol && spare[0] >= 0,
		fmt.Sprintf("goroutines − 2 × active = %d..%d (median %d, spread %d ≤ %d) with %d..%d sessions open",
			spare[0], spare[len(spare)-1], spare[len(spare)/2], spread, tol, minActive, c.o.sessions))
}

// checkRecords reads sessions.jsonl (path, in the run dir) through the run
// dir reader: every session the clients connected is recorded exactly once,
// ids are unique, the byte counters equal the clients', and each fault has
// the verdict it should.
func (c *checker) checkRecords(path string) error {
	d, err := capture.OpenRunDir(filepath.Dir(path))
	if err != nil {
		return err
	}
	byPath := map[string][]*record.Session{}
	ids := map[string]int{}
	records := 0
	err = d.Sessions(func(r *record.Session) error {
		records++
		ids[r.ID]++
		p := r.Target
		if u, err := url.Parse(r.Target); err == nil {
			p = u.Path
		}
		byPath[p] = append(byPath[p], r)
		return nil
	})
	if err != nil {
		return err
	}
	lines, bad := records+d.Bad.Count, d.Bad.Count
	dupIDs := 0
	for _, n := range ids {
		if n > 1 {
			dupIDs++
		}
	}
	detail := fmt.Sprintf("%d lines, %d unparsable, %d ids used more than once", lines, bad, dupIDs)
	if bad > 0 {
		detail += "; " + d.Bad.String()
	}
	c.add("jsonl", bad == 0 && dupIDs == 0, detail)

	c.fl.mu.Lock()
	defer c.fl.mu.Unlock()
	var connected, missing, twice int
	var examples []string
	for _, s := range c.fl.all {
		if !s.Connected {
			continue
		}
		connected++
		switch n := len(byPath[s.Path]); {
		case n == 0:
			missing++
			examples = appendMax(examples, s.Path+" not recorded")
		case n > 1:
			twice++
			examples = appendMax(examples, fmt.Sprintf("%s recorded %d times", s.Path, n))
		}
	}
	c.add("recorded once", missing == 0 && twice == 0 && lines == connected,
		fmt.Sprintf("%d sessions connected (%d tried), %d records; %d missing, %d recorded more than once %s",
			connected, len(c.fl.all), lines, missing, twice, strings.Join(examples, "; ")))
	c.checkBytes(byPath)
	c.checkVerdicts(byPath)
	return nil
}

// checkBytes compares frame bytes both ways, session by session. An upstream
// RST mirrored to the client may discard bytes the proxy relayed before the
// client read them, so there the client may have read less.
func (c *checker) checkBytes(byPath map[string][]*record.Session) {
	var n, c2uBad, u2cBad, rstShort int
	var wrote, read, recC2U, recU2C int64
	var examples []string
	for _, s := range c.fl.all {
		recs := byPath[s.Path]
		if !s.Opened || len(recs) != 1 {
			continue
		}
		r := recs[0]
		n++
		wrote, read = wrote+s.Wrote, read+s.Read
		recC2U, recU2C = recC2U+r.Frames.ClientToUpstream.Bytes, recU2C+r.Frames.UpstreamToClient.Bytes
		if r.Frames.ClientToUpstream.Bytes != s.Wrote {
			c2uBad++
			examples = appendMax(examples, fmt.Sprintf("%s (%s) client wrote %d, record c2u %d", s.Path, s.Fault, s.Wrote, r.Frames.ClientToUpstream.Bytes))
		}
		switch got := r.Frames.UpstreamToClient.Bytes; {
		case got == s.Read:
		case s.Fault == faultRST && s.Read < got:
			rstShort++
		default:
			u2cBad++
			examples = appendMax(examples, fmt.Sprintf("%s (%s, %s) client read %d, record u2c %d", s.Path, s.Fault, s.Ended, s.Read, got))
		}
	}
	c.add("bytes", c2uBad == 0 && u2cBad == 0,
		fmt.Sprintf("%d sessions: client→upstream %d written vs %d recorded (%d differ); upstream→client %d read vs %d recorded (%d differ, %d RST-cut short as allowed) %s",
			n, wrote, recC2U, c2uBad, read, recU2C, u2cBad, rstShort, strings.Join(examples, "; ")))
}

// checkVerdicts: a session without a fault (or with malformed frames) ends
// clean; upstream RST and FIN are abnormal-upstream-drop (reset, eof); a
// client abort is abnormal-client-drop; malformed frames leave a finding.
func (c *checker) checkVerdicts(byPath map[string][]*record.Session) {
	want := map[string]struct {
		verdict record.Verdict
		how     record.How
	}{
		"":             {record.VerdictClean, "close-handshake"},
		faultMalformed: {record.VerdictClean, "close-handshake"},
		faultRST:       {"abnormal-upstream-drop", "reset"},
		faultFIN:       {"abnormal-upstream-drop", "eof"},
		faultAbort:     {"abnormal-client-drop", "reset"},
	}
	got := map[string]int{}
	var wrong int
	var examples []string
	for _, s := range c.fl.all {
		recs := byPath[s.Path]
		if !s.Opened || len(recs) != 1 {
			continue
		}
		r := recs[0]
		w := want[s.Fault]
		kind := s.Fault
		if kind == "" {
			kind = "none"
		}
		ok := r.Verdict == w.verdict && r.End.How == w.how
		if s.Fault == faultMalformed && !hasRule(r, "frame-reserved-opcode", "frame-rsv-without-extension") {
			ok = false
		}
		if ok {
			got[kind]++
			continue
		}
		wrong++
		examples = appendMax(examples, fmt.Sprintf("%s fault %s: verdict %s, end %s/%s, client saw %s %s", s.Path, kind, r.Verdict, r.End.First, r.End.How, s.Ended, s.Err))
	}
	c.add("verdicts", wrong == 0, fmt.Sprintf("as expected per fault: %v; %d otherwise %s", sorted(got), wrong, strings.Join(examples, "; ")))
}

// checkRunJSON: no session record lost, events dropped reported.
func (c *checker) checkRunJSON(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		c.add("run.json", false, err.Error())
		return
	}
	var ri capture.RunInfo
	if err := json.Unmarshal(b, &ri); err != nil {
		c.add("run.json", false, fmt.Sprintf("%s: %v", path, err))
		return
	}
	k := ri.Counters
	c.add("run.json", k.SessionsLost == 0 && k.AcceptErrors == 0,
		fmt.Sprintf("sessions %d, abnormal %d, sessions lost %d, accept errors %d, events dropped %d, rejected %d",
			k.Sessions, k.Abnormal, k.SessionsLost, k.AcceptErrors, k.EventsDropped, k.Rejected))
}

func hasRule(r *record.Session, rules ...string) bool {
	for _, f := range r.Findings {
		if slices.Contains(rules, f.Rule) {
			return true
		}
	}
	return false
}

// appendMax keeps at most three examples.
func appendMax(s []string, e string) []string {
	if len(s) < 3 {
		return append(s, e)
	}
	return s
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
