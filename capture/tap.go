package capture

import (
	"net"
	"time"
)

// Leg names one of the two TCP connections of a session.
type Leg uint8

const (
	// LegClient is the connection between the client and wstap.
	LegClient Leg = 1 << iota
	// LegUpstream is the connection between wstap and the upstream.
	LegUpstream
	// LegBoth writes the same bytes on both legs (a relayed frame chunk).
	LegBoth = LegClient | LegUpstream
)

// Conv describes the two TCP conversations of one session as they really were.
type Conv struct {
	Session string
	// Client leg: Client (the load tool) talks to Listen (wstap's listening address).
	Client, Listen *net.TCPAddr
	// Upstream leg: Local (wstap's outgoing address) talks to Upstream.
	Local, Upstream *net.TCPAddr
}

// Tap receives the decrypted bytes of every session for the pcapng. Every
// method must return at once: implementations copy what they keep before
// they return, and drop (and count) what they cannot keep. fromServer is
// true for bytes the server side of that leg sent (wstap on the client
// leg, the upstream on the upstream leg); for a relayed chunk on LegBoth,
// it is true when the chunk travels upstream→client.
type Tap interface {
	// Open starts the conversations of a leg (a synthetic three-way handshake).
	Open(c *Conv, legs Leg, t time.Time)
	// Data records bytes sent on the given legs.
	Data(session string, legs Leg, fromServer bool, t time.Time, b []byte)
	// End records how a leg's TCP ended: FIN, or RST when rst is true, sent by
	// the server side of that leg when fromServer is true.
	End(session string, legs Leg, fromServer, rst bool, t time.Time)
	// Forget drops the state of a session once both legs have ended.
	Forget(session string)
}

// NopTap records nothing (--pcap=false).
type NopTap struct{}

func (NopTap) Open(*Conv, Leg, time.Time)                {}
func (NopTap) Data(string, Leg, bool, time.Time, []byte) {}
func (NopTap) End(string, Leg, bool, bool, time.Time)    {}
func (NopTap) Forget(string)                             {}
