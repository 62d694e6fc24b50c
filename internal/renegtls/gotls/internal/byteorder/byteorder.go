// Package byteorder stands in for Go's internal/byteorder in the wstap copy
// of crypto/tls. See ../../PATCH.md.
package byteorder

import "encoding/binary"

// LEUint32 decodes a little-endian uint32.
func LEUint32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
