// Package jmeter reads a JMeter test plan (.jmx) and judges how its
// WebSocket samplers — the Doornbosch plugin's eu.luminis.jmeter.wssampler.*
// — keep a connection alive and answer the server's pings (RFC 6455
// §5.5.2: a pong is due "as soon as is practical").
//
// The plugin never answers a ping by itself: only a Ping/Pong Frame Filter
// with replyToPing, and only while a sampler in its scope reads a frame.
package jmeter

import (
	"fmt"
	"os"
)

// Kind names a WebSocket sampler of the plugin.
type Kind string

// The samplers, by what they do on the wire.
const (
	KindOpen            Kind = "open"             // OpenWebSocketSampler: the upgrade only
	KindRequestResponse Kind = "request-response" // RequestResponseWebSocketSampler: a frame out, one in
	KindWrite           Kind = "write"            // SingleWriteWebSocketSampler: a frame out
	KindRead            Kind = "read"             // SingleReadWebSocketSampler: a frame in
	KindPingPong        Kind = "ping-pong"        // PingPongSampler type PingPong: a ping out, the pong in
	KindPong            Kind = "pong"             // PingPongSampler type Pong: an unsolicited pong out
	KindClose           Kind = "close"            // CloseWebSocketSampler: a close out, the close in
	KindUnknown         Kind = "unknown"          // any other element, listed but not judged
)

// Plan is a test plan as read from one .jmx file.
type Plan struct {
	File         string
	Name         string
	ThreadGroups []*ThreadGroup
	// Unknown lists the elements outside any thread group that this
	// package does not know.
	Unknown []Element
}

// ThreadGroup is a thread group with what runs in it, in order.
type ThreadGroup struct {
	Class   string
	Name    string
	Threads Value
	RampUp  Value // seconds
	// Loops is the thread's iteration count (-1: until the test ends).
	Loops Value
	// Scheduler is on when Duration (seconds) bounds the thread's life.
	Scheduler bool
	Duration  Value
	Steps     []Step
}

// Step is one thing a thread does in turn: a sampler, a controller
// holding steps, or an element this package does not know.
type Step struct {
	Sampler *Sampler
	Block   *Block
}

// Block is a logic controller and the steps inside it.
type Block struct {
	Class string
	Name  string
	// Loops is how often the body runs in a row ("" once, -1 until the
	// thread ends); Repeats says it runs more than once.
	Loops   Value
	Repeats bool
	Steps   []Step
}

// Element names an element by its class and testname.
type Element struct {
	Class string `json:"class"`
	Name  string `json:"name"`
}

func (e Element) String() string { return fmt.Sprintf("%s %q", e.Class, e.Name) }

// Sampler is a WebSocket sampler with what is in its scope. A KindUnknown
// sampler is any other element met among the steps; only Class and Name are
// set.
type Sampler struct {
	Kind  Kind   `json:"kind"`
	Class string `json:"class,omitempty"`
	Name  string `json:"name"`
	// In names the controllers around the sampler, outermost first.
	In     []string `json:"in,omitempty"`
	Server Value    `json:"server,omitempty"`
	Port   Value    `json:"port,omitempty"`
	Path   Value    `json:"path,omitempty"`
	TLS    bool     `json:"tls,omitempty"`
	// NewConnection is createNewConnection, and always true for open.
	NewConnection  bool  `json:"create_new_connection,omitempty"`
	ConnectTimeout Value `json:"connect_timeout_ms,omitempty"`
	ReadTimeout    Value `json:"read_timeout_ms,omitempty"`
	// Repeats: the sampler runs more than once per thread.
	Repeats bool `json:"repeats,omitempty"`
	// Filters, Headers and Timers are those in the sampler's scope.
	Filters []Filter `json:"filters,omitempty"`
	Headers []Header `json:"headers,omitempty"`
	Timers  []Timer  `json:"timers,omitempty"`
}

// Filter is a frame filter of the plugin.
type Filter struct {
	Class string `json:"class"`
	Name  string `json:"name"`
	// Pings is what the filter does to a ping that arrives while a sampler
	// in its scope reads: "reply", "discard" or "pass".
	Pings string `json:"pings"`
}

// Header is one header of a Header Manager, as written; its JSON form and
// Shown redact credentials.
type Header struct {
	Name  string `json:"name"`
	Value Value  `json:"value"`
}

// Timer is a timer in a sampler's scope: JMeter runs every timer in scope
// before the sampler and sleeps for the sum.
type Timer struct {
	Class string `json:"class"`
	Name  string `json:"name"`
	// DelayMS is the constant part, RangeMS the random part (uniform:
	// 0..range; Gaussian: the deviation).
	DelayMS Value `json:"delay_ms"`
	RangeMS Value `json:"range_ms,omitempty"`
}

// ReadFile reads the test plan in the file at path.
func ReadFile(path string) (*Plan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	root, err := readTree(f)
	if err != nil {
		return nil, fmt.Errorf("%s is not a JMeter test plan: %w", path, err)
	}
	p, err := build(root)
	if err != nil {
		return nil, fmt.Errorf("%s is not a JMeter test plan: %w", path, err)
	}
	p.File = path
	return p, nil
}
