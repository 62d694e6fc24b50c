package capture

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// pcapInterfaceDescription explains the synthetic packets to whoever opens the file.
const pcapInterfaceDescription = "wstap decrypted relay: each session is a synthetic TCP conversation between " +
	"the client's and the upstream's addresses; server ports are written as 80 so that Wireshark decodes WebSocket; " +
	"the real addresses are in the SYN comments"

// pcapInterfaceDescriptionBoth is the description with --pcap-legs both.
const pcapInterfaceDescriptionBoth = "wstap decrypted relay: each session leg is a synthetic TCP conversation; " +
	"server ports are written as 80 so that Wireshark decodes WebSocket; the real addresses are in the SYN comments"

// zeros pads blocks and ends option lists.
var zeros [8]byte

// pcapName returns the file name of the index-th capture file (1-based).
func pcapName(index int) string {
	if index <= 1 {
		return PcapFile
	}
	return fmt.Sprintf("capture-%04d.pcapng", index)
}

// pcapFile is the capture file being built and its rotation. Its bytes
// go into the spool, which the I/O goroutine writes to disk.
type pcapFile struct {
	maxBytes int64 // 0: never rotate
	index    int
	path     string
	sp       *spool
	ng       *pcapgo.NgWriter
	both     bool     // --pcap-legs both: one conversation per leg
	epb      [28]byte // the fixed part of an Enhanced Packet Block
	opt      [4]byte  // an option header
	tail     [4]byte  // a block's closing length
	pending  int      // bytes of the block room laid out, for commit
}

// headRoom is what a file's first blocks, or its last (the interface
// statistics), need at most.
const headRoom = 1 << 10

// open creates the next capture file and writes its section and interface blocks.
func (pf *pcapFile) open() error {
	pf.index++
	pf.path = pcapName(pf.index)
	desc := pcapInterfaceDescription
	if pf.both {
		desc = pcapInterfaceDescriptionBoth
	}
	intf := pcapgo.NgInterface{
		Name:                "wstap",
		Description:         desc,
		OS:                  runtime.GOOS,
		LinkType:            layers.LinkTypeEthernet,
		TimestampResolution: 9,
	}
	opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
		Hardware: runtime.GOARCH, OS: runtime.GOOS, Application: "wstap",
	}}
	ng, err := pcapgo.NewNgWriterInterface(pf.sp, intf, opts)
	if err == nil {
		err = ng.Flush() // the packets go straight to the spool
	}
	if err != nil {
		return fmt.Errorf("writing pcapng header to %s: %w", pf.path, err)
	}
	pf.ng = ng
	return nil
}

// full reports whether the current file reached the rotation size.
func (pf *pcapFile) full() bool {
	return pf.maxBytes > 0 && pf.sp.size() >= pf.maxBytes
}

// epbPad is the padding after n bytes of a block's body (pcapng,
// draft-ietf-opsawg-pcapng §3.1: blocks are 32-bit aligned).
func epbPad(n int) int { return (4 - n&3) & 3 }

// epbFixed fills pf.epb and pf.tail for an Enhanced Packet Block (pcapng,
// draft-ietf-opsawg-pcapng §4.3) of total bytes holding captured bytes of
// a packet of wire bytes.
func (pf *pcapFile) epbFixed(t time.Time, total, captured, wire int) {
	ts := uint64(t.UnixNano())
	b := pf.epb[:]
	le := binary.LittleEndian
	le.PutUint32(b[0:], 6) // Enhanced Packet Block
	le.PutUint32(b[4:], uint32(total))
	le.PutUint32(b[8:], 0) // interface 0
	le.PutUint32(b[12:], uint32(ts>>32))
	le.PutUint32(b[16:], uint32(ts))
	le.PutUint32(b[20:], uint32(captured))
	le.PutUint32(b[24:], uint32(wire))
	le.PutUint32(pf.tail[:], uint32(total))
}

// room lays out an Enhanced Packet Block without options, of captured
// bytes of a packet of wire bytes, straight in the output buffer and
// returns the captured bytes' place, for the caller to fill and then
// commit. It returns nil, having written nothing, when the block does not
// fit contiguously in the current buffer: write then takes it.
func (pf *pcapFile) room(t time.Time, captured, wire int) []byte {
	total := 28 + captured + epbPad(captured) + 4
	dst := pf.sp.room(total)
	if dst == nil {
		return nil
	}
	pf.epbFixed(t, total, captured, wire)
	copy(dst, pf.epb[:])
	n := 28 + captured
	n += copy(dst[n:], zeros[:epbPad(captured)])
	copy(dst[n:], pf.tail[:])
	pf.pending = total
	return dst[28 : 28+captured]
}

// commit adds the block that room laid out.
func (pf *pcapFile) commit() {
	pf.sp.commit(pf.pending)
	pf.pending = 0
}

// write writes one packet, its headers hdr and captured payload, as an
// Enhanced Packet Block (pcapng, draft-ietf-opsawg-pcapng §4.3), with an
// opt_comment option (§3.5) when comment is not empty. wire is the
// packet's length on the wire. It fails with errNoRoom, having written
// nothing, when no output buffer is free.
func (pf *pcapFile) write(t time.Time, hdr, payload []byte, wire int, comment string) error {
	captured := len(hdr) + len(payload)
	if comment == "" {
		if dst := pf.room(t, captured, wire); dst != nil {
			copy(dst[copy(dst, hdr):], payload)
			pf.commit()
			return nil
		}
	}
	optLen := 0
	if comment != "" {
		optLen = 4 + len(comment) + epbPad(len(comment)) + 4 // comment option + opt_endofopt
	}
	total := 28 + captured + epbPad(captured) + optLen + 4
	if !pf.sp.reserve(total) {
		return errNoRoom
	}
	pf.epbFixed(t, total, captured, wire)
	// Across two buffers: reserve made sure they are at hand.
	pf.sp.Write(pf.epb[:])
	pf.sp.Write(hdr)
	pf.sp.Write(payload)
	pf.sp.Write(zeros[:epbPad(captured)])
	if comment != "" {
		le := binary.LittleEndian
		le.PutUint16(pf.opt[0:], 1) // opt_comment
		le.PutUint16(pf.opt[2:], uint16(len(comment)))
		pf.sp.Write(pf.opt[:])
		pf.sp.Write([]byte(comment))
		pf.sp.Write(zeros[:epbPad(len(comment))+4]) // padding, opt_endofopt
	}
	pf.sp.Write(pf.tail[:])
	return nil
}

// close writes the interface statistics (isb_ifdrop: dropped packets)
// at the end of the current file. The caller has made sure that they fit
// (headRoom), then hands the file to the I/O goroutine (spool.startFile or
// spool.close).
func (pf *pcapFile) close(dropped int64) error {
	stats := pcapgo.NgInterfaceStatistics{
		LastUpdate:      time.Now(),
		PacketsDropped:  uint64(dropped),
		PacketsReceived: pcapgo.NgNoValue64,
	}
	err := pf.ng.WriteInterfaceStats(0, stats)
	if err == nil {
		err = pf.ng.Flush()
	}
	if err != nil {
		return fmt.Errorf("closing %s: %w", pf.path, err)
	}
	return nil
}
