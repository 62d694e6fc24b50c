package capture

import (
	"encoding/binary"
	"fmt"
	"net"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// maxSegment is the largest TCP payload of a synthetic segment: the IPv4
// total length field is 16 bits (RFC 791 §3.1), less 20 bytes of IPv4 and
// 20 bytes of TCP header. IPv6 segments use the same size.
const maxSegment = 65535 - 20 - 20

// windowScale is the shift both sides announce in their SYN (RFC 7323 §2.2),
// so that a 16 MiB message fits in the window without a "window full" note.
const windowScale = 14

// TCP flags of a synthetic segment.
const (
	flagFIN = 1 << iota
	flagSYN
	flagRST
	flagPSH
	flagACK
)

// endpoint is one side of a synthetic TCP conversation as written.
type endpoint struct {
	mac  net.HardwareAddr
	ip   net.IP
	port uint16
}

// segment is one TCP segment to serialise.
type segment struct {
	seq, ack uint32
	flags    uint8
	payload  []byte
}

// packetBuilder serialises Ethernet/IP/TCP packets, reusing its layers and
// buffer so that a packet costs no allocation.
type packetBuilder struct {
	eth     layers.Ethernet
	ip4     layers.IPv4
	ip6     layers.IPv6
	tcp     layers.TCP
	payload gopacket.Payload
	buf     gopacket.SerializeBuffer
	v4, v6  []gopacket.SerializableLayer
	synOpts []layers.TCPOption
	ipID    uint16
}

func newPacketBuilder() *packetBuilder {
	pb := &packetBuilder{buf: gopacket.NewSerializeBufferExpectedSize(64, maxSegment)}
	pb.v4 = []gopacket.SerializableLayer{&pb.eth, &pb.ip4, &pb.tcp, &pb.payload}
	pb.v6 = []gopacket.SerializableLayer{&pb.eth, &pb.ip6, &pb.tcp, &pb.payload}
	mss := uint16(maxSegment)
	pb.synOpts = []layers.TCPOption{
		{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{byte(mss >> 8), byte(mss)}},
		{OptionType: layers.TCPOptionKindNop, OptionLength: 1},
		{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{windowScale}},
	}
	return pb
}

// build serialises seg sent from src to dst and returns the packet bytes,
// valid until the next call.
func (pb *packetBuilder) build(src, dst *endpoint, seg segment) ([]byte, error) {
	v6 := src.ip.To4() == nil
	pb.eth = layers.Ethernet{SrcMAC: src.mac, DstMAC: dst.mac, EthernetType: layers.EthernetTypeIPv4}
	var nl gopacket.NetworkLayer
	ls := pb.v4
	if v6 {
		pb.eth.EthernetType = layers.EthernetTypeIPv6
		pb.ip6 = layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: src.ip, DstIP: dst.ip}
		nl = &pb.ip6
		ls = pb.v6
	} else {
		pb.ipID++
		pb.ip4 = layers.IPv4{Version: 4, TTL: 64, Id: pb.ipID, Flags: layers.IPv4DontFragment,
			Protocol: layers.IPProtocolTCP, SrcIP: src.ip, DstIP: dst.ip}
		nl = &pb.ip4
	}
	pb.tcp = layers.TCP{
		SrcPort: layers.TCPPort(src.port), DstPort: layers.TCPPort(dst.port),
		Seq: seg.seq, Ack: seg.ack, Window: 65535,
		FIN: seg.flags&flagFIN != 0, SYN: seg.flags&flagSYN != 0, RST: seg.flags&flagRST != 0,
		PSH: seg.flags&flagPSH != 0, ACK: seg.flags&flagACK != 0,
	}
	if pb.tcp.SYN {
		pb.tcp.Options = pb.synOpts
	}
	if err := pb.tcp.SetNetworkLayerForChecksum(nl); err != nil {
		return nil, fmt.Errorf("setting TCP checksum layer: %w", err)
	}
	pb.payload = seg.payload
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(pb.buf, opts, ls...); err != nil {
		return nil, fmt.Errorf("serialising %d-byte segment: %w", len(seg.payload), err)
	}
	return pb.buf.Bytes(), nil
}

// buildCut serialises seg as a truncated packet: its TCP payload goes on
// for cut bytes that are not captured (--pcap-snap). It returns the
// captured bytes, valid until the next call, and the packet's length on
// the wire. The IP length fields count the cut bytes; the TCP checksum
// covers only the captured payload, and Wireshark leaves it unverified on a
// truncated packet. Ethernet padding is not captured: past the TCP header
// it would read as payload.
func (pb *packetBuilder) buildCut(src, dst *endpoint, seg segment, cut int) ([]byte, int, error) {
	pkt, err := pb.build(src, dst, seg)
	if err != nil {
		return nil, 0, err
	}
	const eth, tcp = 14, 20
	be := binary.BigEndian
	if src.ip.To4() == nil {
		const ip = 40
		pkt = pkt[:eth+ip+tcp+len(seg.payload)]
		be.PutUint16(pkt[eth+4:], uint16(tcp+len(seg.payload)+cut)) // RFC 8200 §3: payload length
		return pkt, len(pkt) + cut, nil
	}
	const ip = 20
	pkt = pkt[:eth+ip+tcp+len(seg.payload)]
	h := pkt[eth : eth+ip]
	be.PutUint16(h[2:], uint16(ip+tcp+len(seg.payload)+cut)) // RFC 791 §3.1: total length
	h[10], h[11] = 0, 0
	var sum uint32
	for i := 0; i < ip; i += 2 {
		sum += uint32(be.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	be.PutUint16(h[10:], ^uint16(sum))
	return pkt, len(pkt) + cut, nil
}
