// Package renegtls is wstap's TLS client for the upstream leg: Go 1.26.8's
// crypto/tls client with one patch, so that a TLS 1.2 server may go on
// sending application data while it renegotiates, as RFC 5246 allows and
// OpenSSL clients accept.
//
// # The failure it fixes
//
// A server that renegotiates sends a HelloRequest (RFC 5246, Section
// 7.4.1.1) and may keep writing application data under the old cipher spec
// until its ChangeCipherSpec (Section 7.1). crypto/tls runs the new handshake
// inside Conn.Read and ends the connection with "local error: tls:
// unexpected message" on the first such record; Node, the JDK and other
// OpenSSL-based clients read it. A proxy with crypto/tls upstream would
// create the very failure its user is looking for.
//
// # The patch
//
// gotls is a copy of $GOROOT/src/crypto/tls at go1.26.8. gotls/sync.sh makes
// it from the Go source in three steps, and TestForkMatchesGoSource replays
// them and fails on any other difference:
//
//  1. copy the non-test files (all but generate_cert.go);
//  2. point the std-internal imports at the shims in gotls/internal (13
//     hunks, import lines and two type assertions in cipher_suites.go);
//  3. apply gotls/wstap.patch: 7 hunks in conn.go (+18 -2 lines) and the new
//     file wstap_renegotiation.go. gotls/PATCH.md lists and explains them.
//
// While a renegotiation runs and the server's ChangeCipherSpec has not come,
// an application data record is held, in order, instead of failing; Read
// returns the held data after the handshake (and before its error, when it
// fails). A hook reports each renegotiation: start, duration, outcome
// (accepted, refused, failed), the alert or error, and the data held.
//
// # TLS 1.3 and the choice of stack
//
// wstap uses Client for every TLS upstream leg, whatever the version: the
// ClientHello is crypto/tls's byte for byte but for its random values
// (TestSameClientHello), so the server picks the same version, and a TLS 1.3
// connection runs crypto/tls's TLS 1.3 code unchanged (the patch is only
// reachable after a HelloRequest, which TLS 1.3 does not have; the key
// schedule and AES-GCM shims call crypto/hkdf and crypto/cipher, the same
// implementations the standard library wraps). Choosing crypto/tls or this
// copy per upstream would need to know the version before the handshake,
// which only a probe connection the client never made could tell.
// The client leg (wstap as server) keeps crypto/tls: a client-initiated
// renegotiation is refused there as before.
//
// # Errors
//
// Client's errors carry the patched package's types: errors.go names them
// (RecordHeaderError, CertificateVerificationError, AlertError) and the
// package path of its alert type (AlertPkgPath), so that callers tell TLS
// errors from TCP ones on both stacks. It adds no code to gotls.
//
// # What is left out
//
// BoringCrypto and the FIPS 140-3 checks are off (gotls/internal/boring and
// gcm), GODEBUG is read from the environment only (gotls/internal/godebug),
// and tls.Config fields typed by crypto/tls (ClientSessionCache,
// GetClientCertificate) or unused by wstap (ECH) are refused: see Options.
package renegtls
