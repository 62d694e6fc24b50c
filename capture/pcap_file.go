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

// write writes one packet, its headers hdr and captured payload, as an
// Enhanced Packet Block (pcapng, draft-ietf-opsawg-pcapng §4.3), with an
// opt_comment option (§3.5) when comment is not empty. wire is the
// packet's length on the wire. It fails with errNoRoom, having written
// nothing, when no output buffer is free.
func (pf *pcapFile) write(t time.Time, hdr, payload []byte, wire int, comment string) error {
	pad := func(n int) int { return (4 - n&3) & 3 }
	captured := len(hdr) + len(payload)
	optLen := 0
	if comment != "" {
		optLen = 4 + len(comment) + pad(len(comment)) + 4 // comment option + opt_endofopt
	}
	total := 28 + captured + pad(captured) + optLen + 4
	if !pf.sp.reserve(total) {
		return errNoRoom
	}
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
	if comment == "" {
		if dst := pf.sp.room(total); dst != nil {
			// The usual case: straight into the buffer.
			n := copy(dst, b)
			n += copy(dst[n:], hdr)
			n += copy(dst[n:], payload)
			n += copy(dst[n:], zeros[:pad(captured)])
			copy(dst[n:], pf.tail[:])
			pf.sp.commit(total)
			return nil
		}
	}
	// Across two buffers: reserve made sure they are at hand.
	pf.sp.Write(b)
	pf.sp.Write(hdr)
	pf.sp.Write(payload)
	pf.sp.Write(zeros[:pad(captured)])
	if comment != "" {
		le.PutUint16(pf.opt[0:], 1) // opt_comment
		le.PutUint16(pf.opt[2:], uint16(len(comment)))
		pf.sp.Write(pf.opt[:])
		pf.sp.Write([]byte(comment))
		pf.sp.Write(zeros[:pad(len(comment))+4]) // padding, opt_endofopt
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
