package main

import (
	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/proxy"
)

// serveMetrics is replaced by the Prometheus endpoint (issue 6, item 5).
func serveMetrics(addr string, srv *proxy.Server, rec *capture.Recorder) (func(), error) {
	return nil, usageErr{"--metrics is not available in this build"}
}
