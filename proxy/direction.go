package proxy

import (
	"strconv"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/capture/record"
)

// direction is one way of a session's relay; it indexes the state a session
// keeps per direction (toxiproxy's stream.Direction is the model).
type direction uint8

const (
	// clientToUpstream carries the client's frames, masked (RFC 6455 §5.1).
	clientToUpstream direction = iota
	// upstreamToClient carries the upstream's frames, unmasked.
	upstreamToClient
	numDirections
)

// String is the direction's name in events.jsonl and in findings.
func (d direction) String() string {
	switch d {
	case clientToUpstream:
		return "client_to_upstream"
	case upstreamToClient:
		return "upstream_to_client"
	}
	return "direction(" + strconv.Itoa(int(d)) + ")"
}

// reverse is the other direction: the one a pong answering this
// direction's ping travels (RFC 6455 §5.5.3).
func (d direction) reverse() direction { return 1 - d }

// source is the side whose bytes travel this way.
func (d direction) source() record.Side {
	if d == upstreamToClient {
		return record.SideUpstream
	}
	return record.SideClient
}

// dest is the side this direction writes to.
func (d direction) dest() record.Side { return d.reverse().source() }

// legOf is the TCP connection a side speaks on, for the pcapng.
func legOf(side record.Side) capture.Leg {
	if side == record.SideUpstream {
		return capture.LegUpstream
	}
	return capture.LegClient
}
