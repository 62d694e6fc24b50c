package capture

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"
)

// serverPort is the port every server side is written with: Wireshark's
// HTTP dissector claims TCP port 80, sees the upgrade and hands the stream
// to its WebSocket dissector (RFC 6455 §1.7: ws runs over port 80).
const serverPort = 80

// ackEvery is how many unacknowledged bytes a side may send before the
// synthetic peer answers with a pure ACK.
const ackEvery = 256 << 10

// convName names conversation i of a session in comments.
func (w *pcapWriter) convName(i int) string {
	switch {
	case w.one:
		return "client to upstream"
	case i == 1:
		return "upstream leg"
	}
	return "client leg"
}

// tuple identifies a synthetic TCP conversation.
type tuple struct{ cli, srv netip.AddrPort }

// wLeg is the writer's state of one synthetic TCP conversation.
type wLeg struct {
	rt      [2]route // header templates of what [0] the client side and [1] the server side send
	key     tuple
	seq     [2]uint32 // next sequence number of each side
	unacked [2]uint32 // bytes each side sent since the peer last acknowledged
	// hide counts bytes of each side still to leave out: the rest of a frame
	// that was in flight when the file rotated (see replay).
	hide     [2]uint64
	fin      [2]bool
	rst      bool
	released bool
	snap     *legSnap
	// held is each side's head of a frame that --pcap-snap cuts (header and
	// kept payload), not yet written: it goes out with the frame's first cut
	// byte (see pcap_snap.go). heldAt is when its last byte came.
	held   [2][]byte
	heldAt [2]time.Time
}

// wSession holds the legs of one session.
type wSession struct {
	legs [2]*wLeg
}

// pcapWriter builds the packets of every session straight into the output
// buffers. It is guarded by Pcap.mu: the relay goroutines call it with the
// chunks they have just read.
type pcapWriter struct {
	file pcapFile
	hdr  [maxHdrLen]byte // the headers of the packet being written
	// discard is set while a chunk that found no room in the output buffers
	// goes through the legs' state without being written.
	discard  bool
	ipID     uint16
	one      bool // one conversation per session (--pcap-legs one)
	snap     uint64
	sessions map[string]*wSession
	tuples   map[tuple]bool
	nLegs    uint32
	spans    []span
	dropped  *atomic.Int64
	err      error
}

// newPcapWriter starts the first capture file in sp for a writer that
// counts its drops in dropped.
func newPcapWriter(sp *spool, opts PcapOptions, dropped *atomic.Int64) (*pcapWriter, error) {
	w := &pcapWriter{
		file:     pcapFile{maxBytes: int64(opts.MaxMB) << 20, both: opts.BothLegs, sp: sp},
		one:      !opts.BothLegs,
		snap:     uint64(opts.SnapLen),
		sessions: make(map[string]*wSession),
		tuples:   make(map[tuple]bool),
		dropped:  dropped,
	}
	if err := w.file.open(); err != nil {
		return nil, err
	}
	return w, nil
}

// pktRoom is what one packet without a comment takes in the file at most.
const pktRoom = 28 + maxHdrLen + 3 + 4

// each calls f for the legs in legs that the session has, and counts the
// missing ones as dropped.
func (w *pcapWriter) each(session string, legs Leg, f func(i int, l *wLeg) error) error {
	s := w.sessions[session]
	if s == nil {
		return nil // never opened, or already forgotten
	}
	for i, bit := range [2]Leg{LegClient, LegUpstream} {
		if legs&bit == 0 {
			continue
		}
		if s.legs[i] == nil {
			w.dropped.Add(1)
			continue
		}
		if err := f(i, s.legs[i]); err != nil {
			return err
		}
	}
	return nil
}

// roomOr makes sure n bytes fit in the output buffers; when they do not,
// it counts drops dropped records and sets w.discard, so that what follows
// goes through the legs' state without being written (the caller clears
// it): a gap in the sequence numbers shows the loss.
func (w *pcapWriter) roomOr(n int, drops int64) {
	if !w.file.sp.reserve(min(n, sinkSize)) {
		w.dropped.Add(drops)
		w.discard = true
	}
}

// open starts the given legs of a session with a three-way handshake (RFC
// 9293 §3.5); addrs are the client, listen, local and upstream addresses.
func (w *pcapWriter) open(session string, legs Leg, t time.Time, addrs *[4]netip.AddrPort) error {
	s := w.sessions[session]
	if s == nil {
		s = &wSession{}
		w.sessions[session] = s
	}
	for i, bit := range [2]Leg{LegClient, LegUpstream} {
		if legs&bit == 0 || s.legs[i] != nil {
			continue
		}
		cli, srv := addrs[2*i], addrs[2*i+1]
		if w.one {
			cli, srv = addrs[0], addrs[3]
		}
		l := w.newLeg(i, cli, srv)
		s.legs[i] = l
		comment := fmt.Sprintf("wstap session %s, %s: %s -> %s (server port written as %d)",
			session, w.convName(i), cli, srv, serverPort)
		if w.one {
			comment += fmt.Sprintf("; relayed by wstap, listening on %s, from %s", addrs[1], addrs[2])
		}
		if !cli.IsValid() || !srv.IsValid() {
			comment += "; unknown addresses made up"
		}
		w.roomOr(3*pktRoom+len(comment)+12, 1)
		err := w.handshake(l, t, [2]uint32{l.seq[0] - 1, l.seq[1] - 1}, comment)
		w.discard = false
		if err != nil {
			return err
		}
	}
	return nil
}

// newLeg chooses the addresses and initial sequence numbers of leg i.
// Unknown addresses are made up from 127.0.0.x deterministically; a client
// port is moved on while its 4-tuple is in use by another open leg.
func (w *pcapWriter) newLeg(i int, cli, srv netip.AddrPort) *wLeg {
	w.nLegs++
	n := w.nLegs
	if !cli.IsValid() {
		cli = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i)}), uint16(40000+n%20000))
	}
	if !srv.IsValid() {
		srv = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(1 + 3*i)}), serverPort)
	}
	ca, sa := cli.Addr().Unmap(), srv.Addr().Unmap()
	if ca.Is4() != sa.Is4() { // one family per conversation: map IPv4 into IPv6
		ca, sa = netip.AddrFrom16(ca.As16()), netip.AddrFrom16(sa.As16())
	}
	key := tuple{netip.AddrPortFrom(ca, cli.Port()), netip.AddrPortFrom(sa, serverPort)}
	for w.tuples[key] {
		p := key.cli.Port() + 1
		if p < 1024 {
			p = 1024
		}
		key.cli = netip.AddrPortFrom(ca, p)
	}
	w.tuples[key] = true
	isn := n * 2654435761 // Knuth's multiplicative hash: spread, deterministic
	l := &wLeg{key: key, seq: [2]uint32{isn + 1, ^isn + 1}}
	cmac, smac := [6]byte{0x02, 0x77, 0x73, byte(i), 0, 1}, [6]byte{0x02, 0x77, 0x73, byte(i), 0, 2}
	l.rt[0] = newRoute(cmac, smac, key.cli, key.srv)
	l.rt[1] = newRoute(smac, cmac, key.srv, key.cli)
	if w.snap > 0 || w.file.maxBytes > 0 {
		// Rotation needs the frame boundaries and the header blocks too.
		l.snap = &legSnap{snap: w.snap, keepBlocks: w.file.maxBytes > 0, hold: w.snap > 0}
		if w.snap == 0 {
			l.snap.snap = math.MaxUint64
		}
	}
	return l
}

// send writes one segment sent by side d of l, captured whole.
func (w *pcapWriter) send(t time.Time, l *wLeg, d int, seg segment) error {
	return w.sendCommented(t, l, d, seg, "")
}

// sendCommented writes one segment sent by side d of l, captured whole,
// with a comment when it is not empty.
func (w *pcapWriter) sendCommented(t time.Time, l *wLeg, d int, seg segment, comment string) error {
	if w.discard {
		return nil
	}
	w.ipID++
	h := l.rt[d].header(w.hdr[:], seg, len(seg.payload), w.ipID)
	return w.put(w.file.write(t, h, seg.payload, len(h)+len(seg.payload), comment))
}

// put counts a packet that found no room in the output buffers as dropped.
func (w *pcapWriter) put(err error) error {
	if err == errNoRoom {
		w.dropped.Add(1)
		return nil
	}
	return err
}

// handshake writes the three-way handshake of l (RFC 9293 §3.5) with the
// initial sequence numbers isn, the client's SYN carrying comment.
func (w *pcapWriter) handshake(l *wLeg, t time.Time, isn [2]uint32, comment string) error {
	if err := w.sendCommented(t, l, 0, segment{seq: isn[0], flags: flagSYN}, comment); err != nil {
		return err
	}
	if err := w.send(t, l, 1, segment{seq: isn[1], ack: isn[0] + 1, flags: flagSYN | flagACK}); err != nil {
		return err
	}
	return w.send(t, l, 0, segment{seq: isn[0] + 1, ack: isn[1] + 1, flags: flagACK})
}

// data writes b sent on the given legs of a session as data segments.
func (w *pcapWriter) data(session string, legs Leg, fromServer bool, t time.Time, b []byte) error {
	segs := int64((len(b) + maxSegment - 1) / maxSegment)
	return w.each(session, legs, func(i int, l *wLeg) error {
		need := len(b) + len(l.held[0]) + len(l.held[1]) + (len(b)/maxSegment+4)*pktRoom
		w.roomOr(need, segs)
		err := w.legData(l, fromServer, t, b)
		w.discard = false
		return err
	})
}

// legData writes b sent by one side of l.
func (w *pcapWriter) legData(l *wLeg, fromServer bool, t time.Time, b []byte) error {
	d := dirIndex(fromServer)
	if l.rst || l.fin[d] {
		return nil
	}
	total := len(b)
	w.spans = w.spans[:0]
	if l.snap != nil {
		w.spans = l.snap.cut(fromServer, b, w.spans)
	} else {
		w.spans = appendSpan(w.spans, len(b), spanKeep)
	}
	if l.hide[d] > 0 {
		w.spans, l.hide[d] = hideFirst(w.spans, l.hide[d])
	}
	for _, sp := range w.spans {
		p := b[:sp.n]
		b = b[sp.n:]
		var err error
		switch sp.kind {
		case spanHead, spanPend:
			l.held[d] = append(l.held[d], p...)
			l.heldAt[d] = t
		case spanSnap:
			err = w.sendCut(l, d, t, sp.n)
		case spanHide:
			// Left out after a rotation: the sequence numbers still count
			// the bytes (RFC 9293 §3.4).
			if err = w.flushHeld(l, d); err == nil {
				l.seq[d] += uint32(sp.n)
			}
		default:
			if err = w.flushHeld(l, d); err == nil {
				err = w.sendWhole(l, d, t, p)
			}
		}
		if err != nil {
			return err
		}
	}
	l.unacked[d] += uint32(total)
	return w.ackIfDue(l, d, t)
}

// sendWhole writes p sent by side d of l as data segments captured whole.
func (w *pcapWriter) sendWhole(l *wLeg, d int, t time.Time, p []byte) error {
	for off := 0; off < len(p); {
		n := min(len(p)-off, maxSegment)
		seg := segment{seq: l.seq[d], ack: l.next(1 - d), flags: flagPSH | flagACK, payload: p[off : off+n]}
		if err := w.send(t, l, d, seg); err != nil {
			return err
		}
		l.seq[d] += uint32(n)
		l.unacked[1-d] = 0
		off += n
	}
	return nil
}

// sendCut writes n bytes cut by --pcap-snap, sent by side d of l, as
// truncated packets: the first carries the held head of the frame, if any,
// and the others only their TCP header (see pcap_snap.go).
func (w *pcapWriter) sendCut(l *wLeg, d int, t time.Time, n int) error {
	head := l.held[d]
	for n > 0 {
		k := min(n, maxSegment-len(head))
		seg := segment{seq: l.seq[d], ack: l.next(1 - d), flags: flagPSH | flagACK, payload: head}
		// The IP length fields count the cut bytes; the TCP checksum covers
		// only the captured payload, and Wireshark leaves it unverified on a
		// truncated packet. No Ethernet padding: past the TCP header it
		// would read as payload.
		if !w.discard {
			w.ipID++
			h := l.rt[d].header(w.hdr[:], seg, len(head)+k, w.ipID)
			if err := w.put(w.file.write(t, h, head, len(h)+len(head)+k, "")); err != nil {
				return err
			}
		}
		l.seq[d] += uint32(len(head) + k)
		l.unacked[1-d] = 0
		n -= k
		head = nil
	}
	l.held[d] = l.held[d][:0]
	return nil
}

// flushHeld writes side d's held bytes whole: their frame will not be
// followed by its cut bytes in this file (the leg ends, bytes were lost,
// the file rotates or closes).
func (w *pcapWriter) flushHeld(l *wLeg, d int) error {
	if len(l.held[d]) == 0 {
		return nil
	}
	err := w.sendWhole(l, d, l.heldAt[d], l.held[d])
	l.held[d] = l.held[d][:0]
	return err
}

// flushAllHeld writes the held bytes of every leg whole, session by session
// in order, so that the same input gives the same file.
func (w *pcapWriter) flushAllHeld() error {
	var ids []string
	for id, s := range w.sessions {
		for _, l := range s.legs {
			if l != nil && len(l.held[0])+len(l.held[1]) > 0 {
				ids = append(ids, id)
				break
			}
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		for _, l := range w.sessions[id].legs {
			if l == nil {
				continue
			}
			for d := range l.held {
				if err := w.flushHeld(l, d); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// next is the sequence number side d's next byte will carry as written:
// past the bytes still to hide.
func (l *wLeg) next(d int) uint32 {
	return l.seq[d] + uint32(l.hide[d])
}

// ackIfDue has the peer acknowledge side d's bytes once ackEvery are outstanding.
func (w *pcapWriter) ackIfDue(l *wLeg, d int, t time.Time) error {
	if l.unacked[d] < ackEvery {
		return nil
	}
	l.unacked[d] = 0
	return w.send(t, l, 1-d, segment{seq: l.next(1 - d), ack: l.next(d), flags: flagACK})
}

// end writes how the given legs' TCP ended: a FIN acknowledged by the
// peer, or a RST (RFC 9293 §3.6 and §3.5.2), sent by the server side of
// each leg when fromServer is true.
func (w *pcapWriter) end(session string, legs Leg, fromServer, rst bool, t time.Time) error {
	return w.each(session, legs, func(i int, l *wLeg) error {
		d := dirIndex(fromServer)
		if l.rst || l.fin[d] {
			return nil
		}
		w.roomOr(len(l.held[0])+len(l.held[1])+6*pktRoom, 1)
		defer func() { w.discard = false }()
		for side := range l.held {
			if err := w.flushHeld(l, side); err != nil {
				return err
			}
		}
		l.seq[0], l.seq[1], l.hide = l.next(0), l.next(1), [2]uint64{}
		if rst {
			l.rst = true
			w.release(l)
			return w.send(t, l, d, segment{seq: l.seq[d], ack: l.seq[1-d], flags: flagRST | flagACK})
		}
		if err := w.send(t, l, d, segment{seq: l.seq[d], ack: l.seq[1-d], flags: flagFIN | flagACK}); err != nil {
			return err
		}
		l.seq[d]++
		l.fin[d] = true
		l.unacked[d] = 0
		if l.fin[1-d] {
			w.release(l)
		}
		return w.send(t, l, 1-d, segment{seq: l.seq[1-d], ack: l.seq[d], flags: flagACK})
	})
}

// release frees the 4-tuple of a leg that ended.
func (w *pcapWriter) release(l *wLeg) {
	if !l.released {
		l.released = true
		delete(w.tuples, l.key)
	}
}

// forget drops a session's state.
func (w *pcapWriter) forget(session string) {
	s := w.sessions[session]
	if s == nil {
		return
	}
	for _, l := range s.legs {
		if l != nil {
			w.release(l)
		}
	}
	delete(w.sessions, session)
}

// legCount is the number of legs in l.
func legCount(l Leg) int {
	n := 0
	if l&LegClient != 0 {
		n++
	}
	if l&LegUpstream != 0 {
		n++
	}
	return n
}
