package report

import (
	"encoding/json"
	"time"

	"github.com/wstap/wstap/capture/record"
)

// sessionLine is one line of sessions.jsonl as LoadRun reads it: only the
// fields the report counts are decoded (headers, addresses, TLS versions,
// finding details and frame counts are skipped, not allocated), and the
// line itself is kept for a 1006 session, whose whole record the HTML may
// list.
type sessionLine struct {
	ID         string    `json:"id"`
	Target     string    `json:"target"`
	Start      time.Time `json:"start"`
	DurationMS float64   `json:"duration_ms"`
	Handshake  struct {
		Status    int     `json:"status"`
		LatencyMS float64 `json:"latency_ms"`
	} `json:"handshake"`
	TLS struct {
		Client   *leanTLSLeg `json:"client"`
		Upstream *leanTLSLeg `json:"upstream"`
	} `json:"tls"`
	Frames struct {
		ClientToUpstream struct {
			Text   int64 `json:"text"`
			Binary int64 `json:"binary"`
		} `json:"client_to_upstream"`
	} `json:"frames"`
	Keepalive record.Keepalive `json:"keepalive"`
	End       struct {
		At    time.Time   `json:"at"`
		First record.Side `json:"first"`
		How   record.How  `json:"how"`
	} `json:"end"`
	ClientCloseCode *int           `json:"client_close_code"`
	Abnormal        bool           `json:"abnormal"`
	Verdict         record.Verdict `json:"verdict"`
	Findings        []struct {
		Rule     string `json:"rule"`
		Severity string `json:"severity"`
	} `json:"findings"`
	ConcurrentAtEnd            int     `json:"concurrent_at_end"`
	ConcurrentAtOpen           int     `json:"concurrent_at_open"`
	Credential                 *string `json:"credential"`
	CredentialConcurrentAtOpen int     `json:"credential_concurrent_at_open"`

	raw []byte // the line, for a 1006 session
}

// leanTLSLeg is what the report reads of a TLS leg.
type leanTLSLeg struct {
	Error          string  `json:"error"`
	Alert          string  `json:"alert"`
	Resumed        bool    `json:"resumed"`
	HandshakeMS    float64 `json:"handshake_ms"`
	Renegotiations int     `json:"renegotiations"`
	// RenegotiationsFailed: of those, the ones whose new handshake failed.
	RenegotiationsFailed int    `json:"renegotiations_failed"`
	End                  string `json:"end"`
}

// DecodeLine decodes the fields above (capture.LineDecoder: the line is
// scanned once, not validated again by an UnmarshalJSON of its own) and
// keeps a 1006 session's line.
// One sessionLine is reused for a whole file (capture.LinesInto): it is
// zeroed first, but for the buffer of raw.
func (l *sessionLine) DecodeLine(b []byte) error {
	raw := l.raw[:0]
	*l = sessionLine{}
	if err := json.Unmarshal(b, l); err != nil {
		return err
	}
	l.raw = raw
	if l.Abnormal {
		l.raw = append(raw, b...)
	}
	return nil
}

// lineScratch is the record a run's lines are read into, one after the other.
type lineScratch struct {
	rec  record.Session
	legs [2]record.TLSLeg
}

// record fills sc.rec with the decoded fields (the others stay zero) and
// returns it; it is overwritten by the next line.
func (l *sessionLine) record(sc *lineScratch) *record.Session {
	rec, findings := &sc.rec, sc.rec.Findings[:0]
	*rec = record.Session{ID: l.ID, Target: l.Target, Start: l.Start, DurationMS: l.DurationMS,
		Keepalive: l.Keepalive, ClientCloseCode: l.ClientCloseCode, Abnormal: l.Abnormal, Verdict: l.Verdict,
		ConcurrentAtEnd: l.ConcurrentAtEnd, ConcurrentAtOpen: l.ConcurrentAtOpen, Credential: l.Credential,
		CredentialConcurrentAtOpen: l.CredentialConcurrentAtOpen}
	rec.Handshake.Status, rec.Handshake.LatencyMS = l.Handshake.Status, l.Handshake.LatencyMS
	rec.Frames.ClientToUpstream.Text, rec.Frames.ClientToUpstream.Binary = l.Frames.ClientToUpstream.Text, l.Frames.ClientToUpstream.Binary
	rec.End.At, rec.End.First, rec.End.How = l.End.At, l.End.First, l.End.How
	rec.TLS.Client = l.TLS.Client.leg(&sc.legs[0])
	rec.TLS.Upstream = l.TLS.Upstream.leg(&sc.legs[1])
	for _, f := range l.Findings {
		findings = append(findings, record.Finding{Rule: f.Rule, Severity: f.Severity})
	}
	rec.Findings = findings
	return rec
}

// fullRecord decodes the whole record of a 1006 session; should the line
// not decode whole (a field of the wrong type the report skips), it is a
// copy of rec.
func (l *sessionLine) fullRecord(rec *record.Session) *record.Session {
	full := &record.Session{}
	if err := json.Unmarshal(l.raw, full); err == nil {
		return full
	}
	*full = *rec
	full.Findings = append([]record.Finding(nil), rec.Findings...)
	for _, leg := range []**record.TLSLeg{&full.TLS.Client, &full.TLS.Upstream} {
		if *leg != nil {
			c := **leg
			*leg = &c
		}
	}
	return full
}

// leg fills into with l; nil when l is.
func (l *leanTLSLeg) leg(into *record.TLSLeg) *record.TLSLeg {
	if l == nil {
		return nil
	}
	*into = record.TLSLeg{Error: l.Error, Alert: l.Alert, Resumed: l.Resumed, HandshakeMS: l.HandshakeMS,
		Renegotiations: l.Renegotiations, RenegotiationsFailed: l.RenegotiationsFailed, End: l.End}
	return into
}
