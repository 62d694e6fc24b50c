package jmeter

import (
	"encoding/json"
	"strings"

	"github.com/wstap/wstap/capture/report"
)

// The plugin's defaults when a sampler leaves a timeout out
// (WebSocketClient.DEFAULT_CONNECT_TIMEOUT and DEFAULT_READ_TIMEOUT).
const (
	defaultConnectMS = "20000"
	defaultReadMS    = "6000"
)

// sampler reads a sampler of the plugin with the scope it runs in. The
// plugin's samplers are properties server, port, path, TLS,
// createNewConnection, connectTimeout, readTimeout (milliseconds), and
// type (PingPong or Pong) on the PingPongSampler.
func sampler(n *node, sc scope) *Sampler {
	s := &Sampler{Kind: samplerKinds[n.class], Class: n.class, Name: n.name, In: sc.in}
	switch s.Kind {
	case KindOpen:
		s.NewConnection = true
	case KindRequestResponse, KindWrite, KindRead:
		s.NewConnection = n.boolProp("createNewConnection")
	case KindPingPong:
		if n.prop("type") == "Pong" {
			s.Kind = KindPong
		}
	}
	if s.NewConnection {
		s.Server, s.Port, s.Path = Value(n.prop("server")), Value(n.prop("port")), Value(n.prop("path"))
		s.TLS = n.boolProp("TLS")
		s.ConnectTimeout = orDefault(n, "connectTimeout", defaultConnectMS)
		s.Headers = sc.headers
	}
	if s.Reads() || s.NewConnection {
		s.ReadTimeout = orDefault(n, "readTimeout", defaultReadMS)
	}
	if s.Reads() {
		s.Filters = sc.filters
	}
	s.Timers = sc.timers
	return s
}

func orDefault(n *node, name, def string) Value {
	if v := n.prop(name); v != "" {
		return Value(v)
	}
	return Value(def)
}

// Reads reports whether the sampler reads frames through the filters in
// its scope: only then can a Ping/Pong Frame Filter answer a ping.
func (s *Sampler) Reads() bool {
	switch s.Kind {
	case KindRequestResponse, KindRead, KindPingPong, KindClose:
		return true
	}
	return false
}

// Sends reports whether the sampler writes a frame, or (open,
// createNewConnection) an upgrade request.
func (s *Sampler) Sends() bool {
	switch s.Kind {
	case KindRequestResponse, KindWrite, KindPingPong, KindPong, KindClose:
		return true
	}
	return s.NewConnection
}

// Pings is what happens to a server's ping that arrives while the sampler
// reads: "reply", "discard", or "pass" (no filter takes it: the sampler
// gets it as an unexpected frame and no pong is sent). The filter nearest
// to the sampler that takes pings decides.
func (s *Sampler) Pings() string {
	for i := len(s.Filters) - 1; i >= 0; i-- {
		if p := s.Filters[i].Pings; p != "pass" {
			return p
		}
	}
	return "pass"
}

// filterOf reads a frame filter. A PingFrameFilter (the GUI's "Ping/Pong
// Frame Filter") takes pings unless its filterType is FilterPongOnly, and
// answers them with a pong when replyToPing is true; text and binary
// filters never take a ping.
func filterOf(n *node) Filter {
	f := Filter{Class: n.class, Name: n.name, Pings: "pass"}
	if n.class == wsPackage+"PingFrameFilter" && n.prop("filterType") != "FilterPongOnly" {
		f.Pings = "discard"
		if n.boolProp("replyToPing") {
			f.Pings = "reply"
		}
	}
	return f
}

// headersOf reads a Header Manager's HeaderManager.headers collection.
func headersOf(n *node) []Header {
	var out []Header
	c := n.el.child("HeaderManager.headers")
	if c == nil {
		return nil
	}
	for i := range c.Nodes {
		name, _ := c.Nodes[i].prop("Header.name")
		value, _ := c.Nodes[i].prop("Header.value")
		if name != "" {
			out = append(out, Header{Name: name, Value: Value(value)})
		}
	}
	return out
}

// mergeHeaders adds inner to outer; a header of the same name (case
// insensitive) in inner, nearer to the sampler, replaces the outer one.
func mergeHeaders(outer, inner []Header) []Header {
	var out []Header
	for _, h := range outer {
		if !hasHeader(inner, h.Name) {
			out = append(out, h)
		}
	}
	return append(out, inner...)
}

func hasHeader(hs []Header, name string) bool {
	_, ok := header(hs, name)
	return ok
}

func header(hs []Header, name string) (Value, bool) {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

// Shown is the header's value fit to print: credentials redacted as in a
// bundle (report.RedactHeaderValue), except where the value is a JMeter
// variable, which holds no secret of its own.
func (h Header) Shown() string {
	if h.Value.IsVariable() {
		return string(h.Value)
	}
	return report.RedactHeaderValue(h.Name, string(h.Value))
}

// MarshalJSON writes the header with its value as Shown.
func (h Header) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}{h.Name, h.Shown()})
}
