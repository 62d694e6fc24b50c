package capture

// This file implements --pcap-snap: it finds the WebSocket frame boundaries
// in each direction of a leg's byte stream so that only the first N payload
// bytes of each data frame are written, while frame headers, control frames
// and the HTTP upgrade stay whole.
//
// How a cut frame is written so that tshark still decodes it (checked with
// Wireshark 4.0; see TestPcapSnapTsharkCountsEveryFrame):
//
//   - Leaving the cut bytes out of the file altogether (a hole in sequence
//     space) makes TCP report "previous segment not captured" and the frame
//     whose bytes are missing is never handed to the WebSocket dissector.
//   - Wireshark's TCP only reassembles packets captured whole; a truncated
//     packet (captured length below its length on the wire) is dissected on
//     its own, from its first byte, with tcp_dissect_pdus reading what was
//     captured. So a cut frame decodes, opcode and full payload length
//     included, when its whole header, its kept payload and at least one
//     cut byte travel in one truncated packet that starts with the header.
//     When the header or the kept bytes instead end a packet captured whole,
//     TCP waits for the rest in vain (the frame is lost), and when a header
//     is split over two packets the second is read from its first byte and
//     shows made-up frames.
//   - Packets that carry only cut bytes are truncated right after the TCP
//     header. Their length keeps the sequence numbers continuous, and with
//     no captured payload the WebSocket dissector is not called on them.
//     (They must not keep Ethernet padding: a captured byte past the TCP
//     header reads as a frame.) Wireshark skips bytes inside a known PDU
//     only with TCP desegmentation off (scan_for_next_pdu), so this
//     emptiness is what keeps them quiet.
//
// So the header and kept payload of a data frame that will be cut (spanHead,
// or spanPend while its header is incomplete) are held back by the writer
// until the frame's first cut byte arrives, and written with it. A frame
// keeps at most maxSegment-1 bytes of header and payload, so that they and
// a cut byte fit in one segment.

// spanKind says what becomes of a run of stream bytes.
type spanKind uint8

const (
	// spanKeep bytes are written.
	spanKeep spanKind = iota
	// spanSnap bytes are cut by --pcap-snap: they only move the sequence
	// number on.
	spanSnap
	// spanHide bytes belong before a replayed handshake (see replay): they
	// only move the sequence number on.
	spanHide
	// spanHead bytes are the header and kept payload of a data frame that
	// --pcap-snap cuts: held back and written with the frame's first cut byte.
	spanHead
	// spanPend bytes are a frame header still incomplete at the end of a
	// chunk: held back until the header ends and tells whether the frame
	// is cut.
	spanPend
)

// span is a run of stream bytes of one kind.
type span struct {
	n    int
	kind spanKind
}

// appendSpan adds n bytes to dst, merging with the previous run of the same kind.
func appendSpan(dst []span, n int, kind spanKind) []span {
	if n == 0 {
		return dst
	}
	if last := len(dst) - 1; last >= 0 && dst[last].kind == kind {
		dst[last].n += n
		return dst
	}
	return append(dst, span{n: n, kind: kind})
}

// trackPhase is where a direction's tracker is in the stream.
type trackPhase uint8

const (
	// phaseHeaders: inside the HTTP header block (request or response).
	phaseHeaders trackPhase = iota
	// phaseWait: the client's request is complete; the 101 has not been seen.
	phaseWait
	// phaseFrames: RFC 6455 frames follow.
	phaseFrames
	// phaseRaw: not (or no longer) a frame stream we understand; keep everything.
	phaseRaw
)

// headerEnd ends an HTTP header block (RFC 9112 §2.1: the empty line).
const headerEnd = "\r\n\r\n"

// wsTracker follows one direction of a leg: the HTTP header block, then the
// RFC 6455 §5.2 frame headers, across chunk boundaries.
type wsTracker struct {
	phase trackPhase
	// match counts the bytes of headerEnd matched so far.
	match uint8
	// status holds the first bytes of the header block, to recognise a 101.
	status  [12]byte
	statusN uint8
	// waited is set when bytes arrived in phaseWait (data before the 101).
	waited bool
	// block is the header block as sent, when legSnap.keepBlocks is set;
	// blockOver marks one too long to keep.
	block     []byte
	blockOver bool

	// Frame state: hdr collects a frame header of 2 to 14 bytes.
	hdr       [14]byte
	hdrN      uint8
	inPayload bool
	cutting   bool   // the current frame's payload is cut (spanHead, then spanSnap)
	left      uint64 // payload bytes of the current frame not yet seen
	keep      uint64 // of those, how many are still to be written
}

// legSnap tracks both directions of one leg.
type legSnap struct {
	snap uint64
	dir  [2]wsTracker // [0] client→server, [1] server→client
	// keepBlocks keeps each direction's header block, to repeat it in the
	// next file after a rotation.
	keepBlocks bool
	// hold marks the heads of cut frames (spanHead, spanPend) for the writer
	// to hold back; without it they are spanKeep.
	hold bool
}

// maxBlock bounds a kept header block; a longer one is not repeated
// after a rotation (it must fit in one segment).
const maxBlock = 32 << 10

// cut appends to dst the kept and skipped runs of b, sent by the server side
// when fromServer is true.
func (l *legSnap) cut(fromServer bool, b []byte, dst []span) []span {
	t := &l.dir[dirIndex(fromServer)]
	for len(b) > 0 {
		var n int
		switch t.phase {
		case phaseHeaders:
			n = t.scanHeaders(b)
			dst = appendSpan(dst, n, spanKeep)
			if l.keepBlocks && !t.blockOver {
				t.block = append(t.block, b[:n]...)
				t.blockOver = len(t.block) > maxBlock
			}
			if t.match == uint8(len(headerEnd)) {
				l.headersDone(fromServer)
			}
		case phaseWait:
			t.waited = true
			n = len(b)
			dst = appendSpan(dst, n, spanKeep)
		case phaseFrames:
			var kind spanKind
			n, kind = t.scanFrame(b, l.snap, l.hold)
			dst = appendSpan(dst, n, kind)
			if kind == spanPend && t.hdrN == 0 { // the header ended
				settled := spanKeep
				if t.cutting {
					settled = spanHead
				}
				dst = settle(dst, settled)
			}
		default:
			n = len(b)
			dst = appendSpan(dst, n, spanKeep)
		}
		b = b[n:]
	}
	return dst
}

// settle gives the last span, a header that just ended, its kind, merging
// it with the span before it when that is of the same kind.
func settle(dst []span, kind spanKind) []span {
	last := len(dst) - 1
	dst[last].kind = kind
	if last > 0 && dst[last-1].kind == kind {
		dst[last-1].n += dst[last].n
		dst = dst[:last]
	}
	return dst
}

// hideFirst turns the first n bytes of spans into left-out bytes and
// returns the spans and how many bytes are still to hide.
func hideFirst(spans []span, n uint64) ([]span, uint64) {
	for i := range spans {
		if n == 0 {
			break
		}
		sp := &spans[i]
		if uint64(sp.n) <= n {
			n -= uint64(sp.n)
			sp.kind = spanHide
			continue
		}
		// split: the hidden head, then the rest as it was
		h := int(n)
		spans = append(spans[:i+1], spans[i:]...)
		spans[i] = span{n: h, kind: spanHide}
		spans[i+1].n -= h
		n = 0
	}
	return spans, n
}

// headersDone moves the trackers on once a direction's header block ended.
// The client's frames start only if the server answered 101 Switching
// Protocols (RFC 6455 §4.2.2) and the client sent nothing before it.
func (l *legSnap) headersDone(fromServer bool) {
	cli, srv := &l.dir[0], &l.dir[1]
	if !fromServer {
		cli.phase = phaseWait
		return
	}
	st := srv.status[:srv.statusN]
	if len(st) < 12 || string(st[:7]) != "HTTP/1." || string(st[8:12]) != " 101" {
		cli.phase, srv.phase = phaseRaw, phaseRaw
		return
	}
	srv.phase = phaseFrames
	if cli.phase == phaseWait && !cli.waited {
		cli.phase = phaseFrames
	} else {
		cli.phase = phaseRaw
	}
}

// scanHeaders consumes b up to and including the end of the header block
// and reports how many bytes it consumed.
func (t *wsTracker) scanHeaders(b []byte) int {
	for i, c := range b {
		if int(t.statusN) < len(t.status) {
			t.status[t.statusN] = c
			t.statusN++
		}
		switch {
		case c == headerEnd[t.match]:
			t.match++
		case c == '\r':
			t.match = 1
		default:
			t.match = 0
		}
		if t.match == uint8(len(headerEnd)) {
			return i + 1
		}
	}
	return len(b)
}

// scanFrame consumes the start of b within one frame header or one run of
// payload and reports how many bytes it consumed and whether they are kept or
// cut. With hold, header bytes are spanPend (the caller settles them once
// the header ends) and the kept payload of a cut frame is spanHead.
func (t *wsTracker) scanFrame(b []byte, snap uint64, hold bool) (int, spanKind) {
	if t.inPayload {
		if t.keep > 0 {
			n := int(min(t.keep, uint64(len(b))))
			t.keep -= uint64(n)
			t.consumePayload(uint64(n))
			if hold && t.cutting {
				return n, spanHead
			}
			return n, spanKeep
		}
		n := int(min(t.left, uint64(len(b))))
		t.consumePayload(uint64(n))
		return n, spanSnap
	}
	n := 0
	for n < len(b) {
		t.hdr[t.hdrN] = b[n]
		t.hdrN++
		n++
		if int(t.hdrN) == frameHeaderLen(t.hdr[:t.hdrN]) {
			t.startPayload(snap)
			break
		}
	}
	if hold {
		return n, spanPend
	}
	return n, spanKeep
}

// consumePayload accounts for n payload bytes of the current frame.
func (t *wsTracker) consumePayload(n uint64) {
	t.left -= n
	if t.left == 0 {
		t.inPayload = false
	}
}

// startPayload reads the complete header in t.hdr (RFC 6455 §5.2) and sets
// how much of the payload follows and how much of it is kept. Control
// frames (opcode 0x8 and above, §5.5) are kept whole.
func (t *wsTracker) startPayload(snap uint64) {
	h := t.hdr[:t.hdrN]
	t.hdrN = 0
	t.cutting = false
	var length uint64
	switch l7 := h[1] & 0x7f; l7 {
	case 126:
		length = uint64(h[2])<<8 | uint64(h[3])
	case 127:
		for _, c := range h[2:10] {
			length = length<<8 | uint64(c)
		}
	default:
		length = uint64(l7)
	}
	if length == 0 {
		return
	}
	t.inPayload = true
	t.left = length
	t.keep = length
	if h[0]&0x08 == 0 && length > snap { // data frame: continuation, text, binary, reserved 3-7
		// header, kept bytes and one cut byte fit in one segment (see the top)
		t.keep = min(snap, uint64(maxSegment-1-len(h)))
		t.cutting = true
	}
}

// frameHeaderLen returns the length of the frame header that starts with h,
// or 14 (the longest) while h holds fewer than 2 bytes (RFC 6455 §5.2).
func frameHeaderLen(h []byte) int {
	if len(h) < 2 {
		return 14
	}
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 {
		n += 4
	}
	return n
}

// dirIndex maps the sending side to an index: 0 client side, 1 server side.
func dirIndex(fromServer bool) int {
	if fromServer {
		return 1
	}
	return 0
}
