package capture

import (
	"encoding/binary"
	"math/bits"
)

// sum16 adds the bytes of b, read as big-endian 16-bit words (a last odd
// byte padded with a zero), to the one's complement sum s (RFC 1071 §2).
// b must start at an even offset of the summed data. It reads eight bytes
// at a time in the machine's order: the one's complement sum does not
// depend on the byte order up to a swap at the end (RFC 1071 §2(B)). The
// main loop takes 128 bytes a turn: the carry goes through a register once
// a turn, so the longer the run of add-with-carry, the faster
// (BenchmarkSum16, 16 KiB: 0.70-0.74 µs; with 32 bytes a turn 1.03-1.07).
func sum16(b []byte, s uint64) uint64 {
	le := binary.LittleEndian
	var acc, c uint64
	for len(b) >= 128 {
		acc, c = bits.Add64(acc, le.Uint64(b[0:]), c)
		acc, c = bits.Add64(acc, le.Uint64(b[8:]), c)
		acc, c = bits.Add64(acc, le.Uint64(b[16:]), c)
		acc, c = bits.Add64(acc, le.Uint64(b[24:]), c)
		acc, c = bits.Add64(acc, le.Uint64(b[32:]), c)
		acc, c = bits.Add64(acc, le.Uint64(b[40:]), c)
		acc, c = bits.Add64(acc, le.Uint64(b[48:]), c)
		acc, c = bits.Add64(acc, le.Uint64(b[56:]), c)
		acc, c = bits.Add64(acc, le.Uint64(b[64:]), c)
		acc, c = bits.Add64(acc, le.Uint64(b[72:]), c)
		acc, c = bits.Add64(acc, le.Uint64(b[80:]), c)
		acc, c = bits.Add64(acc, le.Uint64(b[88:]), c)
		acc, c = bits.Add64(acc, le.Uint64(b[96:]), c)
		acc, c = bits.Add64(acc, le.Uint64(b[104:]), c)
		acc, c = bits.Add64(acc, le.Uint64(b[112:]), c)
		acc, c = bits.Add64(acc, le.Uint64(b[120:]), c)
		b = b[128:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, le.Uint64(b), c)
		b = b[8:]
	}
	acc, c = bits.Add64(acc, c, 0)
	acc = uint64(fold(acc)) + c // 2^64 ≡ 1: the carry out adds one
	for len(b) >= 2 {
		acc += uint64(le.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) // the high byte of a big-endian word
	}
	return s + uint64(bits.ReverseBytes16(fold(acc)))
}

// fold reduces a one's complement sum to 16 bits (RFC 1071 §2(C)).
func fold(s uint64) uint16 {
	s = s>>32 + s&0xffffffff
	s = s>>32 + s&0xffffffff
	s = s>>16 + s&0xffff
	s = s>>16 + s&0xffff
	return uint16(s)
}
