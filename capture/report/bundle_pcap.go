package report

// This file rewrites the pcapng files of a run for the evidence bundle
// (docs/records.md, "The evidence bundle"): every payload byte of a text, binary or continuation
// frame is overwritten so that the unmasked payload reads "xxxx...", lengths
// kept; secrets in the HTTP upgrade (Authorization, Cookie, token-like query
// values, JWTs) are overwritten in place, same length; TCP checksums are
// recomputed. It makes two passes over the files: the first reassembles each
// direction's HTTP header block and learns which connections were upgraded,
// the second rewrites the packets.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/wstap/wstap/capture"
)

// pcapFill is the byte every hidden payload byte reads as once unmasked.
const pcapFill = 'x'

// pcapMaxHeaderBlock bounds the HTTP header block kept per direction: wstap
// refuses larger ones (--max-header-bytes, 64 KiB by default); anything
// longer is treated as opaque and overwritten whole.
const pcapMaxHeaderBlock = 1 << 20

// pcapFlow is one direction of a TCP connection.
type pcapFlow struct {
	src, dst     netip.Addr
	sport, dport uint16
}

func (f pcapFlow) reverse() pcapFlow {
	return pcapFlow{src: f.dst, dst: f.src, sport: f.dport, dport: f.sport}
}

// pcapConn is what both directions of a connection share.
type pcapConn struct {
	upgraded bool // the server answered 101 Switching Protocols
}

// pcapDir is the state of one direction of one TCP connection.
type pcapDir struct {
	conn   *pcapConn
	isn    uint32
	synced bool // a SYN gave the initial sequence number

	// Pass 1: the header block, then its redacted form.
	block    []byte
	blockEnd int64  // length of the header block; -1: opaque stream; 0: not yet known
	edited   []byte // the redacted header block, nil when nothing changed
	seq1     pcapSeq

	// Pass 2.
	seq2   pcapSeq
	frames pcapFrames
	opaque bool
}

// pcapSeq turns 32-bit TCP sequence numbers into 64-bit stream offsets.
type pcapSeq struct {
	last uint32
	off  int64
	set  bool
}

// offset is the stream offset of the first payload byte of a segment.
func (s *pcapSeq) offset(d *pcapDir, seq uint32) int64 {
	if !s.set {
		s.last, s.off, s.set = seq, 0, true
		if d.synced {
			s.off = int64(seq - d.isn - 1)
		}
	}
	off := s.off + int64(int32(seq-s.last))
	if off > s.off {
		s.last, s.off = seq, off
	}
	return off
}

// pcapRedactor holds the per-connection state of both passes.
type pcapRedactor struct {
	keepPayloads bool
	// dirs holds every connection a flow carried, in order; gen is the
	// index of the current one during pass 2.
	dirs map[pcapFlow][]*pcapDir
	gen  map[pcapFlow]int
	pass int
}

// redactCaptures rewrites the pcapng files in to the files out, index by
// index. Files are taken as one capture in order, as rotation splits it.
func redactCaptures(in, out []string, keepPayloads bool) error {
	r := &pcapRedactor{keepPayloads: keepPayloads, dirs: map[pcapFlow][]*pcapDir{}, gen: map[pcapFlow]int{}}
	r.pass = 1
	for _, p := range in {
		if err := r.file(p, nil); err != nil {
			return err
		}
	}
	r.pass = 2
	for i, p := range in {
		f, err := os.Create(out[i])
		if err != nil {
			return err
		}
		err = r.file(p, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// file reads one capture block by block (pcapng, draft-ietf-opsawg-pcapng
// section 3); in pass 2 it writes every block to w unchanged but for the
// packet bytes it redacts, so section and interface options and the packet
// comments naming each conversation's session survive.
func (r *pcapRedactor) file(path string, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	var bw *bufio.Writer
	if w != nil {
		bw = bufio.NewWriterSize(w, 1<<16)
	}
	var (
		order     binary.ByteOrder = binary.LittleEndian
		linkTypes []layers.LinkType
		block     []byte
	)
	for {
		var head [12]byte
		if _, err := io.ReadFull(br, head[:8]); err == io.EOF {
			break
		} else if err != nil {
			return fmt.Errorf("%s: truncated block header: %w", path, err)
		}
		if binary.LittleEndian.Uint32(head[:4]) == pcapngSHB {
			if _, err := io.ReadFull(br, head[8:12]); err != nil {
				return fmt.Errorf("%s: truncated section header: %w", path, err)
			}
			order = binary.ByteOrder(binary.LittleEndian)
			if binary.LittleEndian.Uint32(head[8:12]) != pcapngMagic {
				order = binary.BigEndian
			}
			linkTypes = linkTypes[:0]
		}
		typ, total := order.Uint32(head[:4]), order.Uint32(head[4:8])
		if total < 12 || total%4 != 0 || total > pcapngMaxBlock {
			return fmt.Errorf("%s: block of type %#x has a bad length %d", path, typ, total)
		}
		if cap(block) < int(total) {
			block = make([]byte, total)
		}
		block = block[:total]
		n := copy(block, head[:8])
		if typ == pcapngSHB {
			n = copy(block, head[:12])
		}
		if _, err := io.ReadFull(br, block[n:]); err != nil {
			return fmt.Errorf("%s: truncated block of type %#x: %w", path, typ, err)
		}
		body := block[8 : total-4]
		if err := r.block(typ, body, order, &linkTypes); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if bw != nil {
			if _, err := bw.Write(block); err != nil {
				return err
			}
		}
	}
	if bw != nil {
		return bw.Flush()
	}
	return nil
}

// pcapng block types and limits.
const (
	pcapngSHB      = 0x0A0D0D0A // Section Header Block
	pcapngIDB      = 1          // Interface Description Block
	pcapngPB       = 2          // Packet Block (obsolete)
	pcapngSPB      = 3          // Simple Packet Block
	pcapngEPB      = 6          // Enhanced Packet Block
	pcapngMagic    = 0x1A2B3C4D // byte-order magic, as read little-endian
	pcapngMaxBlock = 64 << 20
)

// block handles one pcapng block body: it learns link types from interface
// blocks and hands the data of packet blocks to packet.
func (r *pcapRedactor) block(typ uint32, body []byte, order binary.ByteOrder, linkTypes *[]layers.LinkType) error {
	var iface, capLen, origLen uint32
	var data []byte
	switch typ {
	case pcapngIDB:
		if len(body) < 8 {
			return errors.New("short interface description block")
		}
		*linkTypes = append(*linkTypes, layers.LinkType(order.Uint16(body[0:2])))
		return nil
	case pcapngEPB:
		if len(body) < 20 {
			return errors.New("short enhanced packet block")
		}
		iface, capLen, origLen = order.Uint32(body[0:4]), order.Uint32(body[12:16]), order.Uint32(body[16:20])
		data = body[20:]
	case pcapngPB:
		if len(body) < 20 {
			return errors.New("short packet block")
		}
		iface, capLen, origLen = uint32(order.Uint16(body[0:2])), order.Uint32(body[12:16]), order.Uint32(body[16:20])
		data = body[20:]
	case pcapngSPB:
		if len(body) < 4 {
			return errors.New("short simple packet block")
		}
		origLen = order.Uint32(body[0:4])
		data = body[4:]
		capLen = min(origLen, uint32(len(data)))
	default:
		return nil
	}
	if int(iface) >= len(*linkTypes) {
		return fmt.Errorf("packet on interface %d, which was not described", iface)
	}
	if int(capLen) > len(data) {
		return fmt.Errorf("packet of %d bytes in a block of %d", capLen, len(data))
	}
	ci := gopacket.CaptureInfo{CaptureLength: int(capLen), Length: int(origLen)}
	return r.packet(data[:capLen], ci, (*linkTypes)[iface])
}

// packet handles one packet; in pass 2 it rewrites data in place.
func (r *pcapRedactor) packet(data []byte, ci gopacket.CaptureInfo, lt layers.LinkType) error {
	var (
		eth     layers.Ethernet
		ip4     layers.IPv4
		ip6     layers.IPv6
		tcp     layers.TCP
		decoded []gopacket.LayerType
	)
	var first gopacket.LayerType
	switch lt {
	case layers.LinkTypeEthernet:
		first = layers.LayerTypeEthernet
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6:
		first = layers.LayerTypeIPv4
		if len(data) > 0 && data[0]>>4 == 6 {
			first = layers.LayerTypeIPv6
		}
	default:
		return fmt.Errorf("link type %v is not supported", lt)
	}
	p := gopacket.NewDecodingLayerParser(first, &eth, &ip4, &ip6, &tcp)
	p.IgnoreUnsupported = true
	_ = p.DecodeLayers(data, &decoded) // a truncated packet still yields its layers
	var flow pcapFlow
	var segment []byte
	isTCP := false
	for _, l := range decoded {
		switch l {
		case layers.LayerTypeIPv4:
			flow.src, _ = netip.AddrFromSlice(ip4.SrcIP.To4())
			flow.dst, _ = netip.AddrFromSlice(ip4.DstIP.To4())
			segment = ip4.Payload
		case layers.LayerTypeIPv6:
			flow.src, _ = netip.AddrFromSlice(ip6.SrcIP)
			flow.dst, _ = netip.AddrFromSlice(ip6.DstIP)
			segment = ip6.Payload
		case layers.LayerTypeTCP:
			isTCP = true
		}
	}
	if !isTCP {
		return nil // not part of a conversation: nothing of a session in it
	}
	flow.sport, flow.dport = uint16(tcp.SrcPort), uint16(tcp.DstPort)
	d := r.dir(flow, &tcp)
	payload := tcp.Payload
	if len(payload) == 0 {
		return nil
	}
	if r.pass == 1 {
		r.scan(d, tcp.Seq, payload)
		return nil
	}
	if !r.rewrite(d, tcp.Seq, payload) {
		return nil
	}
	full := ci.CaptureLength == ci.Length
	if full && len(segment) >= 18 && binary.BigEndian.Uint16(segment[16:18]) != 0 {
		binary.BigEndian.PutUint16(segment[16:18], 0)
		binary.BigEndian.PutUint16(segment[16:18], tcpChecksum(flow, segment))
	}
	return nil
}

// dir finds (or, on a SYN, starts) the state of the connection a segment
// belongs to. Both passes see the same packets, so pass 2 walks the same list.
func (r *pcapRedactor) dir(flow pcapFlow, tcp *layers.TCP) *pcapDir {
	list := r.dirs[flow]
	if r.pass == 2 {
		g := r.gen[flow]
		if tcp.SYN && g+1 < len(list) && list[g+1].synced && list[g+1].isn == tcp.Seq {
			g++
			r.gen[flow] = g
		}
		return list[g]
	}
	if tcp.SYN {
		if n := len(list); n > 0 && list[n-1].synced && list[n-1].isn == tcp.Seq {
			return list[n-1] // a retransmitted SYN
		}
		d := &pcapDir{isn: tcp.Seq, synced: true}
		if tcp.ACK {
			if rev := r.dirs[flow.reverse()]; len(rev) > 0 {
				d.conn = rev[len(rev)-1].conn
			}
		}
		if d.conn == nil {
			d.conn = &pcapConn{}
		}
		if n := len(list); n > 0 && !list[n-1].synced && !list[n-1].seq1.set {
			list[n-1] = d // an empty placeholder
		} else {
			list = append(list, d)
		}
		r.dirs[flow] = list
		return d
	}
	if len(list) == 0 {
		// No SYN seen: the capture began mid-stream. Nothing can be parsed.
		d := &pcapDir{conn: &pcapConn{}, blockEnd: -1}
		list = append(list, d)
		r.dirs[flow] = list
	}
	return list[len(list)-1]
}

// scan is pass 1: it collects the header block of a direction.
func (r *pcapRedactor) scan(d *pcapDir, seq uint32, payload []byte) {
	off := d.seq1.offset(d, seq)
	if !d.synced {
		d.blockEnd = -1
	}
	if d.blockEnd != 0 {
		return
	}
	if off != int64(len(d.block)) {
		if off+int64(len(payload)) <= int64(len(d.block)) {
			return // a retransmission of bytes already seen
		}
		d.blockEnd, d.block = -1, nil // a gap inside the header block
		return
	}
	d.block = append(d.block, payload...)
	i := bytes.Index(d.block, []byte(headerBlockEnd))
	if i < 0 {
		if len(d.block) > pcapMaxHeaderBlock {
			d.blockEnd, d.block = -1, nil
		}
		return
	}
	block := d.block[:i+len(headerBlockEnd)]
	d.blockEnd = int64(len(block))
	if isSwitchingProtocols(block) {
		d.conn.upgraded = true
	}
	edited := redactHeaderBlock(bytes.Clone(block))
	if !bytes.Equal(edited, block) {
		d.edited = edited
	}
	d.block = nil
}

// headerBlockEnd ends an HTTP header block (RFC 9112 section 2.1).
const headerBlockEnd = "\r\n\r\n"

// isSwitchingProtocols reports whether a header block is a 101 response.
func isSwitchingProtocols(block []byte) bool {
	line, _, _ := bytes.Cut(block, []byte("\r\n"))
	f := strings.Fields(string(line))
	return len(f) >= 2 && strings.HasPrefix(f[0], "HTTP/") && f[1] == "101"
}

// rewrite is pass 2: it overwrites the secrets of a segment in place and
// reports whether it changed anything.
func (r *pcapRedactor) rewrite(d *pcapDir, seq uint32, payload []byte) bool {
	off := d.seq2.offset(d, seq)
	changed := false
	for i := range payload {
		o := off + int64(i)
		switch {
		case d.blockEnd <= 0 || d.opaque:
			// no SYN, a gap or an unfinished header block: nothing is readable
			changed = fill(payload[i:i+1], 0, nil) || changed
		case o < d.blockEnd:
			if d.edited != nil && payload[i] != d.edited[o] {
				payload[i] = d.edited[o]
				changed = true
			}
		case !d.conn.upgraded:
			// Not a WebSocket stream: bodies and later requests are opaque.
			changed = fill(payload[i:i+1], 0, nil) || changed
		default:
			changed = r.frameBytes(d, o, payload[i:]) || changed
			return changed
		}
	}
	return changed
}

// frameBytes feeds the frame parser the bytes b that start at stream offset
// off, after the header block, overwriting data-frame payloads.
func (r *pcapRedactor) frameBytes(d *pcapDir, off int64, b []byte) bool {
	f := &d.frames
	if f.pos == 0 {
		f.pos = d.blockEnd
	}
	if off < f.pos { // retransmitted bytes: hide what was already parsed
		n := min(int64(len(b)), f.pos-off)
		changed := fill(b[:n], 0, nil)
		return f.feed(b[n:], !r.keepPayloads, d) || changed
	}
	if off > f.pos && !f.skip(off-f.pos) {
		d.opaque = true // a gap across a frame header: the rest is unreadable
		return fill(b, 0, nil)
	}
	return f.feed(b, !r.keepPayloads, d)
}

// pcapFrames parses RFC 6455 section 5.2 frame headers across segments.
type pcapFrames struct {
	pos    int64 // stream offset of the next byte to parse
	seen   int   // frames parsed
	hdr    [14]byte
	hdrN   int
	left   uint64 // payload bytes of the current frame still to come
	index  uint64 // payload bytes of the current frame seen (mask position)
	masked bool
	mask   [4]byte
	hide   bool // the current frame is a data frame
}

// headerLen is the length of the frame header once its first two bytes are known.
func (f *pcapFrames) headerLen() int {
	n := 2
	switch f.hdr[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if f.hdr[1]&0x80 != 0 {
		n += 4
	}
	return n
}

// feed parses b, overwriting data-frame payload bytes when hide is set.
func (f *pcapFrames) feed(b []byte, hide bool, d *pcapDir) bool {
	changed := false
	for len(b) > 0 {
		if f.left == 0 {
			f.hdr[f.hdrN] = b[0]
			f.hdrN++
			b = b[1:]
			f.pos++
			if f.hdrN < 2 || f.hdrN < f.headerLen() {
				continue
			}
			f.start()
			continue
		}
		n := min(uint64(len(b)), f.left)
		if f.hide && hide {
			var mask *[4]byte
			if f.masked {
				mask = &f.mask
			}
			changed = fill(b[:n], f.index, mask) || changed
		}
		f.index += n
		f.left -= n
		f.pos += int64(n)
		b = b[n:]
	}
	return changed
}

// start reads a complete frame header.
func (f *pcapFrames) start() {
	h := f.hdr[:f.hdrN]
	opcode := h[0] & 0x0f
	length := uint64(h[1] & 0x7f)
	rest := h[2:]
	switch length {
	case 126:
		length, rest = uint64(binary.BigEndian.Uint16(rest)), rest[2:]
	case 127:
		length, rest = binary.BigEndian.Uint64(rest), rest[8:]
	}
	f.masked = h[1]&0x80 != 0
	if f.masked {
		copy(f.mask[:], rest)
	}
	f.hide = opcode < 8 // text, binary, continuation and reserved data opcodes
	f.left, f.index, f.hdrN = length, 0, 0
	f.seen++
}

// skip advances over n bytes missing from the capture; it fails when they
// are not all payload.
func (f *pcapFrames) skip(n int64) bool {
	if f.left < uint64(n) || f.hdrN != 0 {
		return false
	}
	f.left -= uint64(n)
	f.index += uint64(n)
	f.pos += n
	return true
}

// fill overwrites b so that it reads pcapFill once unmasked with mask
// (RFC 6455 section 5.3), the first byte being payload byte index.
func fill(b []byte, index uint64, mask *[4]byte) bool {
	changed := false
	for i := range b {
		want := byte(pcapFill)
		if mask != nil {
			want ^= mask[(index+uint64(i))%4]
		}
		if b[i] != want {
			b[i] = want
			changed = true
		}
	}
	return changed
}

// redactHeaderBlock overwrites, in place and keeping every length, the
// secrets of an HTTP request or response header block.
func redactHeaderBlock(b []byte) []byte {
	lines := bytes.Split(b, []byte("\r\n"))
	for i, line := range lines {
		if i == 0 {
			fillSecretSpans(line)
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			fillSecretSpans(line)
			continue
		}
		name, value := string(bytes.TrimSpace(line[:colon])), line[colon+1:]
		switch strings.ToLower(name) {
		case "authorization", "proxy-authorization":
			fillCredentials(value)
		case "cookie":
			fillCookies(value, false)
		case "set-cookie":
			fillCookies(value, true)
		default:
			if capture.IsSecretName(name) {
				fillNonSpace(value)
			} else {
				fillSecretSpans(value)
			}
		}
	}
	return b
}

// fillCredentials keeps the scheme of an Authorization value.
func fillCredentials(v []byte) {
	t := bytes.TrimLeft(v, " \t")
	if sp := bytes.IndexAny(t, " \t"); sp >= 0 {
		t = t[sp:]
	}
	fillNonSpace(t)
}

// fillCookies overwrites the value of every cookie pair (only the first one
// of a Set-Cookie, the others being attributes).
func fillCookies(v []byte, first bool) {
	for i, part := range bytes.Split(v, []byte(";")) {
		if first && i > 0 {
			return
		}
		if eq := bytes.IndexByte(part, '='); eq >= 0 {
			fillNonSpace(part[eq+1:])
		} else {
			fillNonSpace(part)
		}
	}
}

func fillNonSpace(b []byte) {
	for i, c := range b {
		if c != ' ' && c != '\t' {
			b[i] = pcapFill
		}
	}
}

// fillSecretSpans overwrites JWTs, credentials after an authentication
// scheme and the values of secret-named name=value pairs.
func fillSecretSpans(b []byte) {
	for _, m := range jwtRE.FindAllIndex(b, -1) {
		fillNonSpace(b[m[0]:m[1]])
	}
	for _, m := range schemeRE.FindAllSubmatchIndex(b, -1) {
		fillNonSpace(b[m[6]:m[7]])
	}
	for _, m := range kvRE.FindAllSubmatchIndex(b, -1) {
		if capture.IsSecretParam(string(b[m[2]:m[3]])) {
			fillNonSpace(b[m[4]:m[5]])
		}
	}
}

// tcpChecksum computes the TCP checksum (RFC 9293 section 3.1) of segment,
// whose checksum field must be zero.
func tcpChecksum(flow pcapFlow, segment []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	src, dst := flow.src.AsSlice(), flow.dst.AsSlice()
	add(src)
	add(dst)
	n := uint32(len(segment))
	if flow.src.Is4() {
		add([]byte{0, byte(layers.IPProtocolTCP), byte(n >> 8), byte(n)})
	} else {
		add([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), 0, 0, 0, byte(layers.IPProtocolTCP)})
	}
	add(segment)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
