package capture

import (
	"encoding/binary"
	"net/netip"
)

// maxSegment is the largest TCP payload of a synthetic segment: the IPv4
// total length field is 16 bits (RFC 791 §3.1), less 20 bytes of IPv4 and
// 20 bytes of TCP header. IPv6 segments use the same size.
const maxSegment = 65535 - 20 - 20

// windowScale is the shift both sides announce in their SYN (RFC 7323 §2.2),
// so that a 16 MiB message fits in the window without a "window full" note.
const windowScale = 14

// TCP flags of a synthetic segment, as they sit in the TCP header's flags
// byte (RFC 9293 §3.1).
const (
	flagFIN = 1 << iota
	flagSYN
	flagRST
	flagPSH
	flagACK
)

// Header sizes of a synthetic packet.
const (
	ethLen    = 14
	ip4Len    = 20 // RFC 791 §3.1, no options
	ip6Len    = 40 // RFC 8200 §3
	tcpLen    = 20 // RFC 9293 §3.1, no options
	synOptLen = 8  // MSS, NOP, window scale
	maxHdrLen = ethLen + ip6Len + tcpLen + synOptLen
)

// synOptions are the options of every SYN: MSS (RFC 9293 §3.7.1), a NOP
// and the window scale (RFC 7323 §2.2).
var synOptions = [synOptLen]byte{2, 4, byte(maxSegment >> 8), byte(maxSegment & 0xff), 1, 3, 3, windowScale}

// segment is one TCP segment to write.
type segment struct {
	seq, ack uint32
	flags    uint8
	payload  []byte
}

// route is the header template of the packets one side of a synthetic
// conversation sends: Ethernet, IP and TCP headers with the fields that
// never change filled in, and the part of the TCP checksum that covers the
// pseudo-header's addresses and protocol. A packet then costs a copy of the
// template, a few stores and the checksum of its payload.
type route struct {
	hdr    [ethLen + ip6Len + tcpLen]byte
	ipLen  int
	pseudo uint64
}

// newRoute makes the template of packets sent from src to dst, with the
// given MAC addresses. src and dst are of one family.
func newRoute(srcMAC, dstMAC [6]byte, src, dst netip.AddrPort) route {
	var r route
	h := r.hdr[:]
	copy(h[0:], dstMAC[:])
	copy(h[6:], srcMAC[:])
	be := binary.BigEndian
	ip := h[ethLen:]
	sa, da := src.Addr(), dst.Addr()
	if sa.Is4() {
		r.ipLen = ip4Len
		be.PutUint16(h[12:], 0x0800)
		ip[0] = 0x45                 // version 4, 5 words
		be.PutUint16(ip[6:], 0x4000) // don't fragment
		ip[8], ip[9] = 64, 6         // TTL, TCP
		s4, d4 := sa.As4(), da.As4()
		copy(ip[12:], s4[:])
		copy(ip[16:], d4[:])
		r.pseudo = sum16(ip[12:20], 0)
	} else {
		r.ipLen = ip6Len
		be.PutUint16(h[12:], 0x86dd)
		ip[0] = 0x60
		ip[6], ip[7] = 6, 64 // next header TCP, hop limit
		s6, d6 := sa.As16(), da.As16()
		copy(ip[8:], s6[:])
		copy(ip[24:], d6[:])
		r.pseudo = sum16(ip[8:40], 0)
	}
	r.pseudo += 6 // protocol (RFC 9293 §3.1; RFC 8200 §8.1)
	tcp := ip[r.ipLen:]
	be.PutUint16(tcp[0:], src.Port())
	be.PutUint16(tcp[2:], dst.Port())
	be.PutUint16(tcp[14:], 65535) // window
	return r
}

// header fills dst (maxHdrLen bytes at least) with the headers of seg,
// whose TCP payload is wireLen bytes long on the wire of which seg.payload
// were captured, and returns the header bytes. The TCP checksum covers the
// captured payload only; for a whole packet that is all of it. ipID
// numbers IPv4 packets.
func (r *route) header(dst []byte, seg segment, wireLen int, ipID uint16) []byte {
	n := ethLen + r.ipLen + tcpLen
	copy(dst, r.hdr[:n])
	tcpHdr := tcpLen
	if seg.flags&flagSYN != 0 {
		copy(dst[n:], synOptions[:])
		n += synOptLen
		tcpHdr += synOptLen
	}
	h := dst[:n]
	be := binary.BigEndian
	ip := h[ethLen:]
	if r.ipLen == ip4Len {
		be.PutUint16(ip[2:], uint16(ip4Len+tcpHdr+wireLen)) // RFC 791 §3.1: total length
		be.PutUint16(ip[4:], ipID)
		be.PutUint16(ip[10:], ^fold(sum16(ip[:ip4Len], 0)))
	} else {
		be.PutUint16(ip[4:], uint16(tcpHdr+wireLen)) // RFC 8200 §3: payload length
	}
	tcp := ip[r.ipLen:]
	be.PutUint32(tcp[4:], seg.seq)
	be.PutUint32(tcp[8:], seg.ack)
	tcp[12] = byte(tcpHdr/4) << 4
	tcp[13] = seg.flags
	// RFC 9293 §3.1: the checksum covers the pseudo-header, the header and the data.
	s := r.pseudo + uint64(tcpHdr+len(seg.payload))
	s = sum16(tcp, s)
	s = sum16(seg.payload, s)
	be.PutUint16(tcp[16:], ^fold(s))
	return h
}
