package capture

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/wstap/wstap/capture/record"
	"github.com/wstap/wstap/internal/atomicfile"
)

// Event is one line of events.jsonl: time, level, session, event, then Fields
// as alternating keys and values.
type Event struct {
	Time    time.Time
	Level   zerolog.Level
	Session string
	Name    string
	Fields  []any
}

// Names of the events run.json counts.
const (
	EventRejected    = "rejected"     // a request wstap refused itself
	EventHTTP        = "http"         // a plain HTTP request forwarded
	EventAcceptError = "accept-error" // a failed accept
)

// Counters are the run's totals, written into run.json.
type Counters struct {
	Sessions       int64 `json:"sessions"`
	Abnormal       int64 `json:"abnormal"`
	Rejected       int64 `json:"rejected"`
	HTTPRequests   int64 `json:"http_requests"`
	EventsDropped  int64 `json:"events_dropped"`
	PacketsDropped int64 `json:"packets_dropped"`
	AcceptErrors   int64 `json:"accept_errors"`
	SessionsLost   int64 `json:"sessions_lost"`
}

// NofileLimit is RLIMIT_NOFILE as the proxy left it.
type NofileLimit struct {
	Soft uint64 `json:"soft"`
	Hard uint64 `json:"hard"`
}

// RunInfo is run.json.
type RunInfo struct {
	Version   string      `json:"version"`
	Args      []string    `json:"args"`
	Start     time.Time   `json:"start"`
	End       *time.Time  `json:"end"`
	Host      string      `json:"host"`
	GoVersion string      `json:"go_version"`
	Mode      string      `json:"mode"`
	Listen    string      `json:"listen"`
	Upstream  string      `json:"upstream,omitempty"`
	Nofile    NofileLimit `json:"nofile"`
	// TCPKeepAliveMS is --tcp-keepalive in milliseconds: 0 when wstap sends
	// no TCP keep-alive probe on either leg (the default).
	TCPKeepAliveMS int64    `json:"tcp_keepalive_ms"`
	Counters       Counters `json:"counters"`
}

// Recorder writes a run dir: events.jsonl through one writer goroutine fed
// by a bounded queue (a full queue drops the event and counts it: recording
// never blocks relaying, docs/records.md rule 6), sessions.jsonl one whole line per
// write, and run.json at the start and at Close.
type Recorder struct {
	dir      string
	info     RunInfo
	events   chan Event
	done     chan struct{}
	evFile   *os.File
	sessMu   sync.Mutex
	sessFile *os.File
	stderr   io.Writer
	warnOnce sync.Once
	warned   atomic.Bool

	Count struct {
		Sessions, Abnormal, Rejected, HTTPRequests, EventsDropped, AcceptErrors, SessionsLost atomic.Int64
	}
	// PacketsDropped, when set, reports the pcap's dropped packets for run.json.
	PacketsDropped func() int64
	closeOnce      sync.Once
	closeMu        sync.RWMutex
	closed         bool
}

// OpenRecorder creates dir and its files. queue is the event queue length
// (0 means 65536).
func OpenRecorder(dir string, info RunInfo, queue int, stderr io.Writer) (*Recorder, error) {
	if err := makeRunDir(dir); err != nil {
		return nil, err
	}
	if queue <= 0 {
		queue = 1 << 16
	}
	r := &Recorder{dir: dir, info: info, events: make(chan Event, queue), done: make(chan struct{}), stderr: stderr}
	var err error
	if r.evFile, err = OpenPrivate(filepath.Join(dir, EventsFile), os.O_APPEND); err != nil {
		return nil, fmt.Errorf("opening events.jsonl: %w", err)
	}
	if r.sessFile, err = OpenPrivate(filepath.Join(dir, SessionsFile), os.O_APPEND); err != nil {
		r.evFile.Close()
		return nil, fmt.Errorf("opening sessions.jsonl: %w", err)
	}
	if err := r.writeRunJSON(); err != nil {
		r.evFile.Close()
		r.sessFile.Close()
		return nil, err
	}
	go r.writeEvents()
	return r, nil
}

// Dir is the run dir.
func (r *Recorder) Dir() string { return r.dir }

// Event queues an event; it never blocks.
func (r *Recorder) Event(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	// run.json's totals count every such event, queued or dropped.
	switch e.Name {
	case EventRejected:
		r.Count.Rejected.Add(1)
	case EventHTTP:
		r.Count.HTTPRequests.Add(1)
	case EventAcceptError:
		r.Count.AcceptErrors.Add(1)
	}
	r.closeMu.RLock()
	defer r.closeMu.RUnlock()
	if r.closed {
		// A straggler after Close (a connection cut at shutdown): counted, not written.
		r.Count.EventsDropped.Add(1)
		return
	}
	select {
	case r.events <- e:
	default:
		r.Count.EventsDropped.Add(1)
	}
}

// Session appends one record to sessions.jsonl with a single write.
func (r *Recorder) Session(rec *record.Session) {
	r.Count.Sessions.Add(1)
	if rec.Abnormal {
		r.Count.Abnormal.Add(1)
	}
	line, err := json.Marshal(rec)
	if err != nil {
		r.Count.SessionsLost.Add(1)
		r.warn(fmt.Errorf("encoding session %s: %w", rec.ID, err))
		return
	}
	line = append(line, '\n')
	r.sessMu.Lock()
	err = writeWhole(r.sessFile, line)
	r.sessMu.Unlock()
	if err != nil {
		r.Count.SessionsLost.Add(1)
		r.warn(fmt.Errorf("writing sessions.jsonl: %w", err))
	}
}

// writeEvents is the single writer of events.jsonl. It batches whole lines
// and writes them with one write, so a killed proxy leaves whole lines only.
func (r *Recorder) writeEvents() {
	defer close(r.done)
	var batch lineBuffer
	log := zerolog.New(&batch)
	flush := func() {
		if len(batch.b) == 0 {
			return
		}
		if err := writeWhole(r.evFile, batch.b); err != nil {
			r.Count.EventsDropped.Add(int64(batch.lines))
			r.warn(fmt.Errorf("writing events.jsonl: %w", err))
		}
		batch.b, batch.lines = batch.b[:0], 0
	}
	for e := range r.events {
		emit(&log, e)
		if len(batch.b) > 256<<10 || len(r.events) == 0 {
			flush()
		}
	}
	flush()
}

func emit(log *zerolog.Logger, e Event) {
	ev := log.WithLevel(e.Level).Str("time", e.Time.UTC().Format(time.RFC3339Nano))
	if e.Session != "" {
		ev = ev.Str("session", e.Session)
	}
	ev = ev.Str("event", e.Name)
	if len(e.Fields) > 0 {
		ev = ev.Fields(e.Fields)
	}
	ev.Send()
}

// lineBuffer collects zerolog's lines (one Write per line).
type lineBuffer struct {
	b     []byte
	lines int
}

func (l *lineBuffer) Write(p []byte) (int, error) {
	l.b = append(l.b, p...)
	l.lines++
	return len(p), nil
}

// Warned reports whether the recorder has printed its warning.
func (r *Recorder) Warned() bool { return r.warned.Load() }

// warn prints one clear warning on stderr the first time recording fails.
func (r *Recorder) warn(err error) {
	r.warnOnce.Do(func() {
		r.warned.Store(true)
		fmt.Fprintf(r.stderr, "wstap: WARNING: recording into %s failed: %v; relaying goes on, lost records are counted in run.json\n", r.dir, err)
	})
}

// Counters returns the totals so far.
func (r *Recorder) Counters() Counters {
	c := Counters{
		Sessions:      r.Count.Sessions.Load(),
		Abnormal:      r.Count.Abnormal.Load(),
		Rejected:      r.Count.Rejected.Load(),
		HTTPRequests:  r.Count.HTTPRequests.Load(),
		EventsDropped: r.Count.EventsDropped.Load(),
		AcceptErrors:  r.Count.AcceptErrors.Load(),
		SessionsLost:  r.Count.SessionsLost.Load(),
	}
	if r.PacketsDropped != nil {
		c.PacketsDropped = r.PacketsDropped()
	}
	return c
}

func (r *Recorder) writeRunJSON() error {
	r.info.Counters = r.Counters()
	b, err := json.MarshalIndent(r.info, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding run.json: %w", err)
	}
	path := filepath.Join(r.dir, RunFile)
	if err := atomicfile.WriteFile(path, append(b, '\n'), PrivateMode); err != nil {
		// A full disk: rewrite run.json in place, in the blocks it frees,
		// so the counters of what was lost still reach the disk.
		if e := rewritePrivate(path, append(b, '\n')); e != nil {
			return fmt.Errorf("writing run.json: %w", err)
		}
	}
	return nil
}

// rewritePrivate writes b over the file at path, mode 0600.
func rewritePrivate(path string, b []byte) error {
	f, err := OpenPrivate(path, os.O_TRUNC)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if e := f.Close(); err == nil {
		err = e
	}
	return err
}

// Close drains the event queue, closes the files and writes the final
// run.json. No Event or Session call may follow.
func (r *Recorder) Close(end time.Time) error {
	var err error
	r.closeOnce.Do(func() {
		r.closeMu.Lock()
		r.closed = true
		close(r.events)
		r.closeMu.Unlock()
		<-r.done
		r.info.End = &end
		err = r.writeRunJSON()
		if e := r.evFile.Close(); err == nil && e != nil {
			err = fmt.Errorf("closing events.jsonl: %w", e)
		}
		if e := r.sessFile.Close(); err == nil && e != nil {
			err = fmt.Errorf("closing sessions.jsonl: %w", e)
		}
	})
	return err
}

// writeWhole appends b with one write; when the disk takes only part of it
// (ENOSPC), the part is cut off again so the file keeps whole lines only.
func writeWhole(f *os.File, b []byte) error {
	n, err := f.Write(b)
	if err != nil && n > 0 {
		if fi, e := f.Stat(); e == nil {
			f.Truncate(fi.Size() - int64(n))
		}
	}
	return err
}
