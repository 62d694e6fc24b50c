package capture

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
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

// countWriter counts the bytes written through it.
type countWriter struct {
	w *fileSink
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

func (c *countWriter) WriteString(s string) (int, error) {
	n, err := c.w.WriteString(s)
	c.n += int64(n)
	return n, err
}

// pcapFile is the current capture file and its rotation.
type pcapFile struct {
	dir      string
	maxBytes int64 // 0: never rotate
	index    int
	path     string
	sink     *fileSink
	buf      []byte // the sink's buffer, kept across rotations
	freeBuf  func()
	pressure func() bool // the writer is behind (see fileSink)
	cw       countWriter
	ng       *pcapgo.NgWriter
	dirty    bool
	both     bool     // --pcap-legs both: one conversation per leg
	epb      [28]byte // the fixed part of an Enhanced Packet Block
	opt      [4]byte  // an option header
	tail     [4]byte  // a block's closing length
}

// open creates the next capture file and writes its section and interface blocks.
func (pf *pcapFile) open() error {
	pf.index++
	pf.path = filepath.Join(pf.dir, pcapName(pf.index))
	if pf.buf == nil {
		pf.buf, pf.freeBuf = newSinkBuffer()
	}
	sink, err := openSink(pf.path, pf.buf, pf.pressure)
	if err != nil {
		return fmt.Errorf("creating %s: %w", pf.path, err)
	}
	pf.sink = sink
	pf.cw = countWriter{w: sink}
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
	ng, err := pcapgo.NewNgWriterInterface(&pf.cw, intf, opts)
	if err != nil {
		sink.Close()
		return fmt.Errorf("writing pcapng header to %s: %w", pf.path, err)
	}
	if err := ng.Flush(); err != nil { // the packets go straight to pf.cw
		sink.Close()
		return fmt.Errorf("writing pcapng header to %s: %w", pf.path, err)
	}
	pf.ng = ng
	return nil
}

// full reports whether the current file reached the rotation size.
func (pf *pcapFile) full() bool {
	return pf.maxBytes > 0 && pf.cw.n >= pf.maxBytes
}

// write writes one packet, its headers hdr and captured payload, as an
// Enhanced Packet Block (pcapng, draft-ietf-opsawg-pcapng §4.3), with an
// opt_comment option (§3.5) when comment is not empty. wire is the
// packet's length on the wire.
func (pf *pcapFile) write(t time.Time, hdr, payload []byte, wire int, comment string) error {
	pad := func(n int) int { return (4 - n&3) & 3 }
	captured := len(hdr) + len(payload)
	optLen := 0
	if comment != "" {
		optLen = 4 + len(comment) + pad(len(comment)) + 4 // comment option + opt_endofopt
	}
	total := 28 + captured + pad(captured) + optLen + 4
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
	pf.cw.Write(b)
	pf.cw.Write(hdr)
	pf.cw.Write(payload)
	pf.cw.Write(zeros[:pad(captured)])
	if comment != "" {
		le.PutUint16(pf.opt[0:], 1) // opt_comment
		le.PutUint16(pf.opt[2:], uint16(len(comment)))
		pf.cw.Write(pf.opt[:])
		pf.cw.WriteString(comment)
		pf.cw.Write(zeros[:pad(len(comment))+4]) // padding, opt_endofopt
	}
	le.PutUint32(pf.tail[:], uint32(total))
	if _, err := pf.cw.Write(pf.tail[:]); err != nil {
		return fmt.Errorf("writing packet to %s: %w", pf.path, err)
	}
	pf.dirty = true
	return nil
}

// release frees the sink's buffer once the last file is closed.
func (pf *pcapFile) release() {
	if pf.freeBuf != nil && pf.sink == nil {
		pf.freeBuf()
		pf.buf, pf.freeBuf = nil, nil
	}
}

// flush pushes buffered blocks to the file.
func (pf *pcapFile) flush() error {
	if !pf.dirty {
		return nil
	}
	pf.dirty = false
	if err := pf.ng.Flush(); err != nil {
		return fmt.Errorf("flushing %s: %w", pf.path, err)
	}
	if err := pf.sink.Flush(); err != nil {
		return fmt.Errorf("flushing %s: %w", pf.path, err)
	}
	return nil
}

// close writes the interface statistics (isb_ifdrop: dropped packets),
// flushes and closes the current file.
func (pf *pcapFile) close(dropped int64) error {
	if pf.sink == nil {
		return nil
	}
	sink := pf.sink
	defer func() { pf.sink = nil }()
	stats := pcapgo.NgInterfaceStatistics{
		LastUpdate:      time.Now(),
		PacketsDropped:  uint64(dropped),
		PacketsReceived: pcapgo.NgNoValue64,
	}
	err := pf.ng.WriteInterfaceStats(0, stats)
	if err == nil {
		pf.dirty = true
		err = pf.flush()
	}
	if cerr := sink.Close(); err == nil && cerr != nil {
		return cerr
	}
	if err != nil {
		return fmt.Errorf("closing %s: %w", pf.path, err)
	}
	return nil
}
