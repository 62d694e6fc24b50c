package report

import (
	"fmt"
	"time"

	"github.com/wstap/wstap/capture"
)

// LoadRun reads a run dir in one pass over each file, keeping of each
// session record only what the report needs (see session and runTally), the
// whole record only for the first 1006 sessions the HTML lists. Missing
// files and lines that do not parse are tolerated and listed in
// Run.Problems; a dir that is missing or is not a run dir is an error naming it.
func LoadRun(dir string) (*Run, error) { return loadRun(dir, nil) }

// loadRun is LoadRun telling progress how many bytes it read.
func loadRun(dir string, progress func(int64)) (*Run, error) {
	d, err := capture.OpenRunDir(dir)
	if err != nil {
		return nil, err
	}
	d.Progress = progress
	r := newRun(dir)
	r.loadManifest(d)
	for _, name := range []string{capture.SessionsFile, capture.EventsFile} {
		if !d.Has(name) {
			r.Problems = append(r.Problems, d.Path(name)+": missing")
		}
	}
	if err := capture.LinesInto(d, capture.SessionsFile, &sessionLine{}, r.addSession); err != nil {
		return nil, err
	}
	r.cands.done()
	err = capture.LinesInto(d, capture.EventsFile, &eventLine{wants: r.wantsEvent}, func(e *eventLine) error {
		if !e.skipped {
			r.addEvent(e.event())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.finishEvents()
	r.trimLists()
	if d.Bad.Count > 0 {
		r.Problems = append(r.Problems, dir+": "+d.Bad.String())
	}
	return r, nil
}

func newRun(dir string) *Run {
	return &Run{Dir: dir, timelines: map[string][]timelineEvent{},
		HTTPStatus: map[int]int{}, Rejected: map[string]int{},
		strs: interner{}, labels: labeler{}, tally: newRunTally(), tls: newTLSTally()}
}

// loadManifest reads run.json into r.Manifest, what went wrong into r.Problems.
func (r *Run) loadManifest(d *capture.RunDir) {
	if !d.Has(capture.RunFile) {
		r.Problems = append(r.Problems, d.Path(capture.RunFile)+": missing")
		return
	}
	m, err := d.Info()
	r.Manifest = m
	if err != nil {
		r.Problems = append(r.Problems, err.Error())
	}
	if m != nil {
		r.start = m.Start
		if m.End != nil {
			r.end = *m.End
		}
	}
}

// addSession takes what the report needs of one record and lets it go,
// unless it is among the run's first 1006 sessions by end.
func (r *Run) addSession(l *sessionLine) error {
	rec := l.record(&r.scratch)
	idx := r.store.n
	s := r.store.add()
	fillFacts(&s.facts, 0, rec, r.labels)
	s.target, s.credential = r.strs.of(s.target), r.strs.of(s.credential)
	for i, rule := range s.handshakeRules {
		s.handshakeRules[i] = r.strs.of(rule)
	}
	s.concAtEnd, s.counted = int32(rec.ConcurrentAtEnd), upgraded(rec)
	s.recConcOpen, s.recCredConc = int32(s.facts.concOpen), int32(s.facts.credConc)
	end := endTime(rec)
	if s.counted {
		r.open.add(rec.Start, end)
	}
	r.span(rec.Start, end)
	r.tally.add(rec, end, idx)
	r.tls.record(rec, end)
	if rec.Abnormal && r.cands.wants(s.end, idx) {
		r.cands.offer(l.fullRecord(rec), s, idx)
	}
	return nil
}

// span widens the run's start and end to the session's, as the report
// always has: the first start (run.json's unless earlier), the last end.
func (r *Run) span(start, end time.Time) {
	if r.start.IsZero() || start.Before(r.start) {
		r.start = start
	}
	if end.After(r.end) {
		r.end = end
	}
}

// addEvent counts one line of events.jsonl and keeps the timeline of the
// sessions the HTML lists.
func (r *Run) addEvent(e *loggedEvent) {
	switch e.Event {
	case "http":
		if e.By == "wstap" {
			// Forward mode's own 403 (--allow) and 407 (--proxy-auth)
			// answers: refusals of wstap's, not statuses of the platform.
			r.Rejected[fmt.Sprintf("forward-%d", e.Status)]++
		} else {
			r.HTTPStatus[e.Status]++
		}
	case "rejected":
		r.Rejected[e.Reason]++
	case "accept-error":
		r.AcceptErrors++
	case "tls":
		if e.Error != "" || e.Alert != "" {
			r.TLSErrors = append(r.TLSErrors, *e)
		}
	case "tls-renegotiation":
		r.Renegotiations = append(r.Renegotiations, *e)
	}
	r.cands.addEvent(e, r.timelines)
}

// wantsEvent says whether the report needs an event of this kind and
// session (see addEvent): every event the report counts, and any event of a
// session whose timeline it draws; a "tls" event only with an error or an
// alert, which eventLine.skippable sees to.
func (r *Run) wantsEvent(event, session []byte) bool {
	switch string(event) {
	case "http", "rejected", "accept-error", "tls-renegotiation":
		return true
	}
	_, ok := r.cands.seen[string(session)]
	return ok
}

// finishEvents settles what needed both files: the TLS failures and
// renegotiations of sessions with and without a record.
func (r *Run) finishEvents() {
	if len(r.TLSErrors) == 0 && len(r.Renegotiations) == 0 && len(r.tls.deferred) == 0 {
		return
	}
	ids := r.ids()
	r.tally.unrecordedTLS(r.TLSErrors, ids)
	r.tls.events(r, ids)
}

// ids maps the session ids of the run to whether the session ended in 1006.
func (r *Run) ids() map[string]bool {
	ids := make(map[string]bool, r.store.n)
	r.store.each(func(_ int, s *session) { ids[s.id] = s.abnormal })
	return ids
}
