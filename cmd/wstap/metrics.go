package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/record"
	"github.com/wstap/wstap/proxy"
)

// directions are the label values of the per-direction metrics, the names
// the session records and events use.
var directions = [2]string{"client_to_upstream", "upstream_to_client"}

// handshakeBuckets are the upgrade latency buckets in seconds: loopback
// answers in well under a millisecond, a loaded platform in seconds.
var handshakeBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// metrics is the Prometheus view of a running proxy ('wstap proxy
// --metrics'). It stands between the proxy and the capture.Recorder: it
// forwards every event and session record unchanged and counts them on the
// way, so it never blocks the relay more than an atomic add does. Live
// figures the proxy already keeps (active, opened, rejected, accept errors
// from proxy.Stats; frames, bytes, pings and pongs of the sessions still
// open from proxy.Server.Relayed) are read at scrape time.
type metrics struct {
	next *capture.Recorder
	reg  *prometheus.Registry

	ended     *prometheus.CounterVec // by verdict
	abnormal  *prometheus.CounterVec // by the side that ended the session first
	handshake prometheus.Histogram
	http      *prometheus.CounterVec // by status

	ln  net.Listener
	hs  *http.Server
	err chan error
}

// newMetrics returns the recorder to give the proxy (proxy.Config.Recorder)
// in place of rec when --metrics is set.
func newMetrics(rec *capture.Recorder) *metrics {
	m := &metrics{next: rec, reg: prometheus.NewRegistry()}
	m.ended = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wstap_sessions_ended_total",
		Help: "WebSocket sessions ended, by verdict."}, []string{"verdict"})
	m.abnormal = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wstap_sessions_abnormal_total",
		Help: "Sessions whose client saw close code 1006 (no close frame reached it), by the side that ended first (the record's end.first)."},
		[]string{"first"})
	m.handshake = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "wstap_handshake_latency_seconds",
		Help: "Time from the upgrade request to the upstream's answer (any status).", Buckets: handshakeBuckets})
	m.http = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wstap_http_requests_total",
		Help: "Non-WebSocket HTTP requests forwarded, by the status the client got (502: upstream unreachable)."}, []string{"status"})
	for _, v := range record.Verdicts {
		m.ended.WithLabelValues(string(v))
	}
	for _, s := range []record.Side{record.SideClient, record.SideUpstream, record.SideProxy} {
		m.abnormal.WithLabelValues(string(s))
	}
	m.reg.MustRegister(m.ended, m.abnormal, m.handshake, m.http,
		counterFunc("wstap_events_dropped_total", "Events left out of events.jsonl because the writer fell behind.",
			func() int64 { return rec.Count.EventsDropped.Load() }),
		counterFunc("wstap_packets_dropped_total", "Packets left out of capture.pcapng because the writer fell behind.",
			func() int64 {
				if rec.PacketsDropped == nil {
					return 0
				}
				return rec.PacketsDropped()
			}),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func counterFunc(name, help string, f func() int64) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
}

// Event counts e and forwards it to the capture.Recorder.
func (m *metrics) Event(e capture.Event) {
	switch e.Name {
	case "handshake":
		if ms, ok := eventField(e, "latency_ms").(float64); ok {
			m.handshake.Observe(ms / 1000)
		}
	case capture.EventHTTP:
		if st, ok := eventField(e, "status").(int); ok && st >= 100 && st <= 999 {
			m.http.WithLabelValues(strconv.Itoa(st)).Inc()
		}
	}
	m.next.Event(e)
}

// Session counts rec and forwards it to the capture.Recorder.
func (m *metrics) Session(rec *record.Session) {
	m.ended.WithLabelValues(string(rec.Verdict)).Inc()
	if rec.Abnormal {
		m.abnormal.WithLabelValues(string(rec.End.First)).Inc()
	}
	m.next.Session(rec)
}

// eventField returns the value of key in e's alternating keys and values.
func eventField(e capture.Event, key string) any {
	for i := 0; i+1 < len(e.Fields); i += 2 {
		if k, ok := e.Fields[i].(string); ok && k == key {
			return e.Fields[i+1]
		}
	}
	return nil
}

// serve registers srv's live counters and serves /metrics on addr (a bare
// port means loopback). It returns a function that shuts the endpoint down.
func (m *metrics) serve(addr string, srv *proxy.Server) (stop func(), err error) {
	st := &srv.Stats
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "wstap_sessions_active",
			Help: "Upgraded WebSocket sessions open now."}, func() float64 { return float64(st.Active.Load()) }),
		counterFunc("wstap_sessions_opened_total", "WebSocket sessions started (upgrade requests received).", st.Opened.Load),
		counterFunc("wstap_rejected_requests_total", "Requests wstap refused itself (unparsable, headers too large or too slow).", st.Rejected.Load),
		counterFunc("wstap_accept_errors_total", "Failed accepts (EMFILE: the open-file limit is reached).", st.AcceptErrors.Load),
		newRelayedCollector(srv))
	if _, err := strconv.Atoi(addr); err == nil {
		addr = "127.0.0.1:" + addr
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("%q: want host:port such as 127.0.0.1:9464: %v", addr, err)
	}
	m.ln, err = net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "wstap: Prometheus metrics at /metrics")
	})
	m.hs = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	m.err = make(chan error, 1)
	go func() { m.err <- m.hs.Serve(m.ln) }()
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			m.hs.Shutdown(ctx)
			if err := <-m.err; err != nil && !errors.Is(err, http.ErrServerClosed) {
				m.next.Event(capture.Event{Level: zerolog.ErrorLevel, Name: "metrics-error", Fields: []any{"error", err.Error()}})
			}
		})
	}, nil
}

// Addr is the address /metrics is served on, once serve succeeded.
func (m *metrics) Addr() net.Addr { return m.ln.Addr() }
