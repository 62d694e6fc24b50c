// Package record is the schema of sessions.jsonl: one Session per WebSocket
// session, and the vocabulary of its ending (Side, How, Verdict). The proxy
// fills a Session, capture writes it, capture/report and users' own tools
// read it back. docs/records.md gives every field's meaning; the JSON names
// here are the contract and never change.
package record

import "time"

// Severity of a finding.
const (
	SevError = "error"
	SevWarn  = "warn"
	SevInfo  = "info"
)

// Finding is one thing wstap judged wrong or worth noting about a session.
// Rule ids are stable; docs/records.md ("Findings") lists them.
type Finding struct {
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	Detail   string `json:"detail"`
}

// Header is one HTTP header line as it travelled, in order, name as sent.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Handshake is the upgrade exchange of a session.
type Handshake struct {
	Status          int      `json:"status"`
	RequestHeaders  []Header `json:"request_headers"`
	ResponseHeaders []Header `json:"response_headers"`
	Subprotocol     string   `json:"subprotocol"`
	Extensions      string   `json:"extensions"`
	LatencyMS       float64  `json:"latency_ms"`
	// Method, RequestURI and Proto of the request line, for the audit.
	Method string `json:"method,omitempty"`
	URI    string `json:"uri,omitempty"`
	Proto  string `json:"proto,omitempty"`
}

// TLSLeg describes the TLS of one leg; nil when that leg was plain TCP.
type TLSLeg struct {
	Version     string  `json:"version"`
	Cipher      string  `json:"cipher"`
	SNI         string  `json:"sni"`
	ALPN        string  `json:"alpn"`
	Error       string  `json:"error"`
	Alert       string  `json:"alert,omitempty"`
	Resumed     bool    `json:"resumed,omitempty"`
	HandshakeMS float64 `json:"handshake_ms,omitempty"`
	// Renegotiations counts the TLS 1.2 renegotiations this leg's peer asked
	// for after the first handshake, one per request whatever the records.
	Renegotiations int `json:"renegotiations,omitempty"`
	// RenegotiationsFailed: of those, the ones whose new handshake failed.
	RenegotiationsFailed int `json:"renegotiations_failed,omitempty"`
	// End is how this leg's TLS ended: "close_notify", "tcp" (a bare FIN) or
	// "reset"; set on every leg whose handshake completed.
	End string `json:"end,omitempty"`
}

// TLSInfo holds both legs.
type TLSInfo struct {
	Client   *TLSLeg `json:"client"`
	Upstream *TLSLeg `json:"upstream"`
}

// DirFrames counts the frames that went one way.
type DirFrames struct {
	Frames       int64 `json:"frames"`
	Bytes        int64 `json:"bytes"`
	Text         int64 `json:"text"`
	Binary       int64 `json:"binary"`
	Continuation int64 `json:"continuation"`
	Ping         int64 `json:"ping"`
	Pong         int64 `json:"pong"`
	Close        int64 `json:"close"`
	// Tunnel is true when a frame header could not be parsed and the rest of
	// this direction was relayed as plain bytes (counted in TunnelBytes).
	Tunnel      bool  `json:"tunnel,omitempty"`
	TunnelBytes int64 `json:"tunnel_bytes,omitempty"`
}

// Frames holds both directions.
type Frames struct {
	ClientToUpstream DirFrames `json:"client_to_upstream"`
	UpstreamToClient DirFrames `json:"upstream_to_client"`
}

// Interval summarises ping intervals in milliseconds; nil when fewer than two pings.
type Interval struct {
	Min float64 `json:"min"`
	P50 float64 `json:"p50"`
	Max float64 `json:"max"`
}

// RTT summarises pong round trips in milliseconds.
type RTT struct {
	P50 float64 `json:"p50"`
	Max float64 `json:"max"`
}

// Keepalive is the ping/pong ledger of a session.
type Keepalive struct {
	ClientPings            int64     `json:"client_pings"`
	UpstreamPings          int64     `json:"upstream_pings"`
	ClientPingIntervalMS   *Interval `json:"client_ping_interval_ms"`
	UpstreamPingIntervalMS *Interval `json:"upstream_ping_interval_ms"`
	PongRTTMS              *RTT      `json:"pong_rtt_ms"`
	// ClientPongRTTMS: how fast the client answered the upstream's pings;
	// UpstreamPongRTTMS: how fast the upstream answered the client's.
	ClientPongRTTMS   *RTT    `json:"client_pong_rtt_ms,omitempty"`
	UpstreamPongRTTMS *RTT    `json:"upstream_pong_rtt_ms,omitempty"`
	UnansweredPings   int64   `json:"unanswered_pings"`
	UnsolicitedPongs  int64   `json:"unsolicited_pongs,omitempty"`
	MaxSilenceMS      float64 `json:"max_silence_ms"`
	SilenceBeforeEnd  float64 `json:"silence_before_end_ms"`
	// Heartbeats: application-level keep-alive messages matched by --heartbeat.
	ClientHeartbeats            int64     `json:"client_heartbeats,omitempty"`
	UpstreamHeartbeats          int64     `json:"upstream_heartbeats,omitempty"`
	ClientHeartbeatIntervalMS   *Interval `json:"client_heartbeat_interval_ms,omitempty"`
	UpstreamHeartbeatIntervalMS *Interval `json:"upstream_heartbeat_interval_ms,omitempty"`
	// LastAppClose is the last message matched by --app-close before the end.
	LastAppClose string `json:"last_app_close,omitempty"`
	// ClientSilenceBeforeEndMS: time from the client's last data frame or
	// ping (its pongs not counted) to the end.
	ClientSilenceBeforeEndMS float64 `json:"client_silence_before_end_ms"`
	// ClientMaxSilenceMS: the client's longest silence, its pongs not
	// counted, the final one up to the end included (what an idle timer that
	// ignores pongs acts on).
	ClientMaxSilenceMS float64 `json:"client_max_silence_ms"`
	// UnansweredPingBeforeEndMS: time from the upstream's oldest ping still
	// unanswered at the end to the end (what a ping timeout acts on); null
	// when every upstream ping was answered.
	UnansweredPingBeforeEndMS *float64 `json:"unanswered_ping_before_end_ms"`
}

// CloseFrame is a close frame one side sent.
type CloseFrame struct {
	Code   int       `json:"code"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Closes holds the close frame each side sent, nil when it sent none.
type Closes struct {
	Client   *CloseFrame `json:"client"`
	Upstream *CloseFrame `json:"upstream"`
}

// Side is who ended a session first: the client, the upstream or wstap.
type Side string

// Sides.
const (
	SideClient   Side = "client"
	SideUpstream Side = "upstream"
	SideProxy    Side = "proxy"
)

// How is how the first end of a session came about.
type How string

// Ways a session ends.
const (
	HowCloseHandshake   How = "close-handshake"
	HowEOF              How = "eof"
	HowReset            How = "reset"
	HowTLSError         How = "tls-error"
	HowHandshakeRejects How = "handshake-rejected"
	HowDialError        How = "dial-error"
	HowShutdown         How = "shutdown"
	HowError            How = "error"
)

// End says when and how the session ended (docs/records.md, "end"): a time "end"
// and an object "end"; one JSON key cannot be both, so the time is end.at.
type End struct {
	At    time.Time `json:"at"`
	First Side      `json:"first"`
	How   How       `json:"how"`
	Error string    `json:"error"`
}

// Verdict is how a session ended, in one word (docs/records.md, "Verdicts").
type Verdict string

// Verdicts (docs/records.md, "Verdicts").
const (
	VerdictClean          Verdict = "clean"
	VerdictClosedUpstream Verdict = "closed-by-upstream"
	VerdictClosedClient   Verdict = "closed-by-client"
	VerdictAbnormalUp     Verdict = "abnormal-upstream-drop"
	VerdictAbnormalClient Verdict = "abnormal-client-drop"
	VerdictRejected       Verdict = "handshake-rejected"
	VerdictTLSClient      Verdict = "tls-failed-client"
	VerdictTLSUpstream    Verdict = "tls-failed-upstream"
	VerdictUnreachable    Verdict = "upstream-unreachable"
	VerdictShutdown       Verdict = "proxy-shutdown"
	// VerdictProxyError: wstap itself ended an upgraded session (its own TLS
	// stack failed, or an internal error); end.first is "proxy".
	VerdictProxyError Verdict = "proxy-error"
)

// Verdicts lists every verdict in report order.
var Verdicts = []Verdict{VerdictClean, VerdictClosedUpstream, VerdictClosedClient,
	VerdictAbnormalUp, VerdictAbnormalClient, VerdictRejected, VerdictTLSClient,
	VerdictTLSUpstream, VerdictUnreachable, VerdictShutdown, VerdictProxyError}

// Session is one line of sessions.jsonl. Field names are the contract
// of docs/records.md ("Session record"); do not rename them.
type Session struct {
	ID                string    `json:"id"`
	ClientAddr        string    `json:"client_addr"`
	UpstreamAddr      string    `json:"upstream_addr,omitempty"`
	Target            string    `json:"target"`
	Mode              string    `json:"mode,omitempty"`
	Start             time.Time `json:"start"`
	DurationMS        float64   `json:"duration_ms"`
	Handshake         Handshake `json:"handshake"`
	TLS               TLSInfo   `json:"tls"`
	Frames            Frames    `json:"frames"`
	Keepalive         Keepalive `json:"keepalive"`
	Close             Closes    `json:"close"`
	End               End       `json:"end"`
	ClientCloseCode   *int      `json:"client_close_code"`
	UpstreamCloseCode *int      `json:"upstream_close_code"`
	Abnormal          bool      `json:"abnormal"`
	Verdict           Verdict   `json:"verdict"`
	Findings          []Finding `json:"findings"`
	ConcurrentAtEnd   int       `json:"concurrent_at_end"`
	// ConcurrentAtOpen: upgraded sessions open when this one's 101 reached
	// the client, itself included; for another answer, those open when it
	// came. A cap acts on this number.
	ConcurrentAtOpen int `json:"concurrent_at_open"`
	// Credential identifies the credential of the upgrade request
	// ("sha256:" + 8 hex of the Authorization value, else of the first
	// token-like query value, else of the Cookie header); null when none.
	Credential *string `json:"credential"`
	// CredentialConcurrentAtOpen: upgraded sessions with the same credential
	// open at that moment, itself included; 0 without a credential.
	CredentialConcurrentAtOpen int `json:"credential_concurrent_at_open"`
}
