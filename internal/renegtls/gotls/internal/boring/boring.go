// Package boring stands in for Go's crypto/internal/boring in the wstap copy
// of crypto/tls: BoringCrypto is never enabled here, so every call below is
// unreachable and only exists for the copied code to compile. See ../../PATCH.md.
package boring

import "crypto/cipher"

// Enabled is false: the copy always uses Go's own cryptography.
const Enabled = false

// Unreachable marks code that only runs without BoringCrypto; here, all code.
func Unreachable() {}

// NewGCMTLS is never called (Enabled is false).
func NewGCMTLS(b cipher.Block) (cipher.AEAD, error) { return cipher.NewGCM(b) }

// NewGCMTLS13 is never called (Enabled is false).
func NewGCMTLS13(b cipher.Block) (cipher.AEAD, error) { return cipher.NewGCM(b) }
