package capture

import (
	"fmt"
	"slices"
	"time"
)

// rotate closes the full file and starts the next one (--pcap-max-mb).
// Each file must decode on its own, so every WebSocket leg still open is
// replayed at the top of the new file: a three-way handshake and the HTTP
// upgrade again, placed in sequence space so that they end where the
// leg's next frame starts. The file's statistics and the next file's
// first buffer must be at hand: until they are, the file grows on.
func (w *pcapWriter) rotate(t time.Time) error {
	sp := w.file.sp
	ready := func() bool {
		if sp.spare == nil {
			sp.spare = sp.take()
		}
		return sp.spare != nil && len(sp.cur.b)-sp.cur.n >= headRoom
	}
	if !ready() {
		return nil
	}
	if err := w.flushAllHeld(); err != nil {
		return err
	}
	if !ready() {
		return nil
	}
	prev := w.file.path
	if err := w.file.close(w.dropped.Load()); err != nil {
		return err
	}
	sp.startFile(w.file.index + 1)
	if err := w.file.open(); err != nil {
		return err
	}
	ids := make([]string, 0, len(w.sessions))
	for id := range w.sessions {
		ids = append(ids, id)
	}
	slices.Sort(ids) // the same input gives the same file
	for _, id := range ids {
		for i, l := range w.sessions[id].legs {
			if l == nil || l.rst || l.fin[0] || l.fin[1] {
				continue
			}
			if err := w.replay(id, i, l, t, prev); err != nil {
				return err
			}
		}
	}
	return nil
}

// replay writes the start of leg i again in the new file, when the leg is
// either fresh or a WebSocket stream whose frame boundaries are known. The
// rest of a frame in flight is left out of the new file (l.hide), so that
// Wireshark's first byte after the upgrade is a frame header. Other legs
// go on without a handshake.
func (w *pcapWriter) replay(id string, i int, l *wLeg, t time.Time, prev string) error {
	sn := l.snap
	if sn == nil {
		return nil
	}
	cd, sd := &sn.dir[0], &sn.dir[1]
	fresh := cd.phase == phaseHeaders && cd.statusN == 0 && sd.phase == phaseHeaders && sd.statusN == 0
	framing := cd.phase == phaseFrames && sd.phase == phaseFrames && !cd.blockOver && !sd.blockOver &&
		cd.hdrN == 0 && sd.hdrN == 0
	if !fresh && !framing {
		return nil
	}
	var isn, end [2]uint32
	for d, dt := range []*wsTracker{cd, sd} {
		if dt.inPayload {
			l.hide[d] = dt.left
		}
		end[d] = l.next(d)
		isn[d] = end[d] - uint32(len(dt.block)) - 1
	}
	comment := fmt.Sprintf("wstap session %s, %s continued from %s: handshake and upgrade repeated", id, w.convName(i), prev)
	w.roomOr(len(cd.block)+len(sd.block)+5*pktRoom+len(comment)+12, 1)
	defer func() { w.discard = false }()
	if err := w.handshake(l, t, isn, comment); err != nil {
		return err
	}
	if len(cd.block) > 0 {
		seg := segment{seq: isn[0] + 1, ack: isn[1] + 1, flags: flagPSH | flagACK, payload: cd.block}
		if err := w.send(t, l, 0, seg); err != nil {
			return err
		}
	}
	if len(sd.block) > 0 {
		seg := segment{seq: isn[1] + 1, ack: end[0], flags: flagPSH | flagACK, payload: sd.block}
		if err := w.send(t, l, 1, seg); err != nil {
			return err
		}
	}
	return nil
}
