package capture

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// pcapInterfaceDescription explains the synthetic packets to whoever opens the file.
const pcapInterfaceDescription = "wstap decrypted relay: each session leg is a synthetic TCP conversation; " +
	"server ports are written as 80 so that Wireshark decodes WebSocket; the real addresses are in the SYN comments"

// pcapName returns the file name of the index-th capture file (1-based).
func pcapName(index int) string {
	if index <= 1 {
		return PcapFile
	}
	return fmt.Sprintf("capture-%04d.pcapng", index)
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// pcapFile is the current capture file and its rotation.
type pcapFile struct {
	dir      string
	maxBytes int64 // 0: never rotate
	index    int
	path     string
	f        *os.File
	bw       *bufio.Writer
	cw       countWriter
	ng       *pcapgo.NgWriter
	dirty    bool
	epb      [28]byte
}

// open creates the next capture file and writes its section and interface blocks.
func (pf *pcapFile) open() error {
	pf.index++
	pf.path = filepath.Join(pf.dir, pcapName(pf.index))
	f, err := OpenPrivate(pf.path, os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("creating %s: %w", pf.path, err)
	}
	pf.f = f
	pf.bw = bufio.NewWriterSize(f, 256<<10)
	pf.cw = countWriter{w: pf.bw}
	intf := pcapgo.NgInterface{
		Name:                "wstap",
		Description:         pcapInterfaceDescription,
		OS:                  runtime.GOOS,
		LinkType:            layers.LinkTypeEthernet,
		TimestampResolution: 9,
	}
	opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
		Hardware: runtime.GOARCH, OS: runtime.GOOS, Application: "wstap",
	}}
	ng, err := pcapgo.NewNgWriterInterface(&pf.cw, intf, opts)
	if err != nil {
		f.Close()
		return fmt.Errorf("writing pcapng header to %s: %w", pf.path, err)
	}
	pf.ng = ng
	return nil
}

// full reports whether the current file reached the rotation size.
func (pf *pcapFile) full() bool {
	return pf.maxBytes > 0 && pf.cw.n >= pf.maxBytes
}

// write writes one packet of origLen bytes of which data were captured.
func (pf *pcapFile) write(t time.Time, data []byte, origLen int) error {
	ci := gopacket.CaptureInfo{Timestamp: t, CaptureLength: len(data), Length: origLen}
	if err := pf.ng.WritePacket(ci, data); err != nil {
		return fmt.Errorf("writing packet to %s: %w", pf.path, err)
	}
	pf.dirty = true
	return nil
}

// writeCommented writes one whole packet as an Enhanced Packet Block with
// an opt_comment option (pcapng, draft-ietf-opsawg-pcapng §4.3 and §3.5),
// which pcapgo.NgWriter cannot write.
func (pf *pcapFile) writeCommented(t time.Time, data []byte, comment string) error {
	if err := pf.ng.Flush(); err != nil { // keep the block order
		return fmt.Errorf("writing packet to %s: %w", pf.path, err)
	}
	pad := func(n int) int { return (4 - n&3) & 3 }
	optLen := 4 + len(comment) + pad(len(comment)) + 4 // comment option + opt_endofopt
	total := 28 + len(data) + pad(len(data)) + optLen + 4
	ts := uint64(t.UnixNano())
	b := pf.epb[:]
	le := binary.LittleEndian
	le.PutUint32(b[0:], 6) // Enhanced Packet Block
	le.PutUint32(b[4:], uint32(total))
	le.PutUint32(b[8:], 0) // interface 0
	le.PutUint32(b[12:], uint32(ts>>32))
	le.PutUint32(b[16:], uint32(ts))
	le.PutUint32(b[20:], uint32(len(data)))
	le.PutUint32(b[24:], uint32(len(data)))
	var zero [4]byte
	var opt [4]byte
	le.PutUint16(opt[0:], 1) // opt_comment
	le.PutUint16(opt[2:], uint16(len(comment)))
	var tail [4]byte
	le.PutUint32(tail[:], uint32(total))
	parts := [][]byte{b, data, zero[:pad(len(data))], opt[:], []byte(comment),
		zero[:pad(len(comment))], zero[:], tail[:]}
	for _, p := range parts {
		if _, err := pf.cw.Write(p); err != nil {
			return fmt.Errorf("writing packet to %s: %w", pf.path, err)
		}
	}
	pf.dirty = true
	return nil
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
	if err := pf.bw.Flush(); err != nil {
		return fmt.Errorf("flushing %s: %w", pf.path, err)
	}
	return nil
}

// close writes the interface statistics (isb_ifdrop: dropped packets),
// flushes and closes the current file.
func (pf *pcapFile) close(dropped int64) error {
	if pf.f == nil {
		return nil
	}
	f := pf.f
	pf.f = nil
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
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("closing %s: %w", pf.path, cerr)
	}
	if err != nil {
		return fmt.Errorf("closing %s: %w", pf.path, err)
	}
	return nil
}
