package proxy

import (
	"encoding/base64"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/rs/zerolog"
	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/record"
	"github.com/wstap/wstap/frames"
)

// wsSession is one WebSocket session: an upgrade request and, after a 101,
// the relay of both directions.
type wsSession struct {
	srv *Server
	id  string
	rec record.Session

	// Raw TCP connections (for FIN/RST mirroring) and the ones relayed
	// (TLS-wrapped where a leg speaks TLS).
	cliRaw, upRaw net.Conn
	cli, up       net.Conn

	upgradedAt time.Time
	dirs       [numDirections]*dirObs

	mu       sync.Mutex
	ledger   ledger
	closes   [numDirections]*record.CloseFrame // close frame sent in direction d
	firstEnd *endCause
	torn     bool // the proxy closed both legs: later errors are consequences
	ends     tlsEnds
	stopping bool // proxy shutdown
	findings map[string]*findingCount
	order    []string
	appClose string

	// live is what each direction relayed so far, for Server.Relayed
	// (metrics); the last padding ends the second direction's cache line.
	live [numDirections]liveDir
	_    [64]byte
}

type findingCount struct {
	f record.Finding
	n int
}

// endCause is the first thing that ended the relay.
type endCause struct {
	side record.Side
	how  record.How
	err  string
	at   time.Time
}

func newSession(srv *Server, id string) *wsSession {
	ss := &wsSession{srv: srv, id: id, findings: map[string]*findingCount{}}
	ss.rec.ID = id
	return ss
}

// event sends one event of this session to the recorder.
func (ss *wsSession) event(level zerolog.Level, name string, fields ...any) {
	ss.srv.cfg.Recorder.Event(capture.Event{Time: time.Now(), Level: level, Session: ss.id, Name: name, Fields: fields})
}

// finding records a finding once per rule, counting repeats.
func (ss *wsSession) finding(f record.Finding) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.findingLocked(f)
}

func (ss *wsSession) findingLocked(f record.Finding) {
	key := f.Rule
	if fc, ok := ss.findings[key]; ok {
		fc.n++
		return
	}
	ss.findings[key] = &findingCount{f: f, n: 1}
	ss.order = append(ss.order, key)
	ss.event(levelOf(f.Severity), "finding", "rule", f.Rule, "severity", f.Severity, "detail", f.Detail)
}

func levelOf(sev string) zerolog.Level {
	switch sev {
	case record.SevError:
		return zerolog.ErrorLevel
	case record.SevWarn:
		return zerolog.WarnLevel
	}
	return zerolog.InfoLevel
}

// setEnd keeps the first cause of the end; later ones are consequences.
func (ss *wsSession) setEnd(side record.Side, how record.How, err error, at time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.firstEnd != nil {
		return
	}
	c := &endCause{side: side, how: how, at: at}
	if err != nil {
		c.err = err.Error()
	}
	ss.firstEnd = c
}

// shutdown ends the session because the proxy stops.
func (ss *wsSession) shutdown() {
	ss.mu.Lock()
	ss.stopping = true
	ss.torn = true
	ss.mu.Unlock()
	ss.setEnd(record.SideProxy, record.HowShutdown, nil, time.Now())
	if ss.cliRaw != nil {
		ss.cliRaw.Close()
	}
	if ss.upRaw != nil {
		ss.upRaw.Close()
	}
}

// dirObs observes one direction's frames (frames.Observer). Its counters are
// written only by that direction's goroutine.
type dirObs struct {
	ss    *wsSession
	dir   direction
	now   time.Time
	nowNs int64 // now in unix nanoseconds
	// stamped is the read whose time last went into last; activeStamped
	// whether it went into active too.
	stamped       int64
	activeStamped bool
	counts        record.DirFrames
	last          atomic.Int64 // unix nanos of the last frame sent this way
	// active is the last frame other than a pong: what an idle timer that
	// ignores the answers to its own pings counts.
	active atomic.Int64
	maxGap time.Duration
	// activeMaxGap is the longest gap between two reads holding a frame
	// other than a pong (the final one up to the end is added by finish).
	activeMaxGap time.Duration
	// messages counts the message events sent for this direction.
	messages int
	scanner  *frames.Scanner
}

func (d *dirObs) Frame(f *frames.Info) {
	c := &d.counts
	c.Frames++
	switch f.OpCode {
	case ws.OpText:
		c.Text++
	case ws.OpBinary:
		c.Binary++
	case ws.OpContinuation:
		c.Continuation++
	case ws.OpPing:
		c.Ping++
	case ws.OpPong:
		c.Pong++
	case ws.OpClose:
		c.Close++
	}
	// Silence: no frame of any kind in either direction (docs/records.md, "keepalive"). Every
	// frame of a read shares its time, so the first one of a read does it.
	now := d.nowNs
	if d.stamped != now {
		d.stamped, d.activeStamped = now, false
		prev := d.last.Load()
		if o := d.ss.dirs[d.dir.reverse()].last.Load(); o > prev {
			prev = o
		}
		if gap := time.Duration(now - prev); gap > d.maxGap {
			d.maxGap = gap
		}
		d.last.Store(now)
	}
	if f.OpCode != ws.OpPong && !d.activeStamped {
		d.activeStamped = true
		if gap := time.Duration(now - d.active.Load()); gap > d.activeMaxGap {
			d.activeMaxGap = gap
		}
		d.active.Store(now)
	}
}

func (d *dirObs) Control(f *frames.Info, p []byte) {
	ss := d.ss
	switch f.OpCode {
	case ws.OpPing:
		ss.mu.Lock()
		ss.ledger.ping(d.dir, p, d.now)
		ss.mu.Unlock()
		ss.event(zerolog.InfoLevel, "ping", "dir", d.dir.String(), "len", len(p))
	case ws.OpPong:
		ss.mu.Lock()
		rtt := ss.ledger.pong(d.dir, p, d.now)
		late := d.dir == clientToUpstream && rtt > ss.srv.cfg.LatePong
		if late {
			ss.ledger.latePongs++
			if rtt > ss.ledger.worstLate {
				ss.ledger.worstLate = rtt
			}
		}
		ss.mu.Unlock()
		if rtt >= 0 {
			ss.event(zerolog.InfoLevel, "pong", "dir", d.dir.String(), "len", len(p), "rtt_ms", round3(ms(rtt)))
		} else {
			ss.event(zerolog.InfoLevel, "pong", "dir", d.dir.String(), "len", len(p), "unsolicited", true)
		}
	case ws.OpClose:
		ci := frames.DecodeClose(p)
		ss.mu.Lock()
		if ss.closes[d.dir] == nil {
			ss.closes[d.dir] = &record.CloseFrame{Code: ci.Code, Reason: ci.Reason, At: d.now}
		}
		ss.mu.Unlock()
		ss.event(zerolog.InfoLevel, "close", "dir", d.dir.String(), "code", ci.Code, "reason", ci.Reason, "code_name", frames.CodeName(ci.Code))
	}
}

func (d *dirObs) Data(f *frames.Info, prefix []byte) {
	if f.FirstOfMessage && d.messages < d.ss.srv.cfg.MaxMessageEvents {
		// One event per message (its first frame) for the HAR, capped per
		// direction so a busy session cannot flood the event queue.
		d.messages++
		fields := []any{"dir", d.dir.String(), "opcode", int(f.OpCode), "len", f.Length}
		if d.ss.srv.cfg.LogPayloads && len(prefix) > 0 {
			if f.OpCode == ws.OpText {
				fields = append(fields, "data", string(prefix))
			} else {
				fields = append(fields, "data", base64.StdEncoding.EncodeToString(prefix))
			}
		}
		d.ss.event(zerolog.DebugLevel, "message", fields...)
	}
	if len(prefix) == 0 || f.MessageOpCode != ws.OpText {
		return
	}
	cfg := &d.ss.srv.cfg
	for _, re := range cfg.Heartbeats {
		if re.Match(prefix) {
			d.ss.mu.Lock()
			d.ss.ledger.hbTimes[d.dir] = append(d.ss.ledger.hbTimes[d.dir], d.now)
			d.ss.mu.Unlock()
			d.ss.event(zerolog.InfoLevel, "heartbeat", "dir", d.dir.String())
			return
		}
	}
	for _, re := range cfg.AppClose {
		if re.Match(prefix) {
			msg := string(prefix)
			d.ss.mu.Lock()
			d.ss.appClose = msg
			d.ss.mu.Unlock()
			d.ss.event(zerolog.WarnLevel, "app-close", "dir", d.dir.String(), "message", msg)
			return
		}
	}
}

func (d *dirObs) Finding(rule, detail string) {
	sev := record.SevWarn
	if rule == frames.RuleHeaderUnparsable {
		sev = record.SevError
	}
	d.ss.finding(record.Finding{Rule: rule, Severity: sev, Detail: d.dir.String() + ": " + detail})
}

// findingsList renders the findings with their repeat counts.
func (ss *wsSession) findingsList() []record.Finding {
	out := make([]record.Finding, 0, len(ss.order))
	for _, k := range ss.order {
		fc := ss.findings[k]
		f := fc.f
		if fc.n > 1 {
			f.Detail += " (" + strconv.Itoa(fc.n) + " times)"
		}
		out = append(out, f)
	}
	return out
}

// isStopping reports whether the proxy is shutting this session down.
func (ss *wsSession) isStopping() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.stopping
}
