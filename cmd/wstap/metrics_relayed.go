package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wstap/wstap/proxy"
)

// relayedCollector serves what the relay passed, per direction, read from
// proxy.Server.Relayed at scrape time: the sessions still open count with
// what they relayed so far, so a 30-minute session shows in Grafana as it
// runs. The relay itself only stores per-session atomics once per read.
type relayedCollector struct {
	srv                         *proxy.Server
	frames, bytes, pings, pongs *prometheus.Desc
}

func newRelayedCollector(srv *proxy.Server) *relayedCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{"direction"}, nil)
	}
	return &relayedCollector{srv: srv,
		frames: desc("wstap_frames_total", "WebSocket frames relayed, by direction, as they pass (sessions still open included)."),
		bytes: desc("wstap_frame_bytes_total", "Wire bytes relayed on upgraded sessions (frame headers included), by direction, as they pass; "+
			"a direction relayed as plain bytes after an unparsable header counts those too."),
		pings: desc("wstap_pings_total", "Ping frames relayed, by direction, as they pass."),
		pongs: desc("wstap_pongs_total", "Pong frames relayed, by direction, as they pass."),
	}
}

// Describe implements prometheus.Collector.
func (c *relayedCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.frames, c.bytes, c.pings, c.pongs} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *relayedCollector) Collect(ch chan<- prometheus.Metric) {
	c2u, u2c := c.srv.Relayed()
	for i, r := range [2]proxy.Relayed{c2u, u2c} {
		for _, m := range []struct {
			d *prometheus.Desc
			v int64
		}{{c.frames, r.Frames}, {c.bytes, r.Bytes}, {c.pings, r.Pings}, {c.pongs, r.Pongs}} {
			ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v), directions[i])
		}
	}
}
