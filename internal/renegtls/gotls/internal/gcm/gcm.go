// Package gcm stands in for Go's crypto/internal/fips140/aes/gcm in the wstap
// copy of crypto/tls. The standard library's NewGCMForTLS12 and NewGCMForTLS13
// are crypto/cipher's AES-GCM (the same implementation) plus a FIPS 140-3 check
// that the caller builds nonces as RFC 5288 §3 and RFC 8446 §5.3 say; the
// copied record layer builds them exactly so, and the check is left out.
// See ../../PATCH.md.
package gcm

import "crypto/cipher"

// NewGCMForTLS12 returns AES-GCM for TLS 1.2 records (RFC 5288).
func NewGCMForTLS12(b cipher.Block) (cipher.AEAD, error) { return cipher.NewGCM(b) }

// NewGCMForTLS13 returns AES-GCM for TLS 1.3 records (RFC 8446, Section 5.3).
func NewGCMForTLS13(b cipher.Block) (cipher.AEAD, error) { return cipher.NewGCM(b) }
