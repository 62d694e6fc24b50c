package renegtls

import (
	"reflect"

	gotls "github.com/wstap/wstap/internal/renegtls/gotls"
)

// The error types of the patched package, for errors.As: Client's errors
// carry these, not crypto/tls's types of the same names.
type (
	// RecordHeaderError is crypto/tls's RecordHeaderError.
	RecordHeaderError = gotls.RecordHeaderError
	// CertificateVerificationError is crypto/tls's CertificateVerificationError.
	CertificateVerificationError = gotls.CertificateVerificationError
	// AlertError is crypto/tls's AlertError.
	AlertError = gotls.AlertError
)

// AlertPkgPath is the package path of the patched package's unexported
// alert type: Read and Handshake report an alert as a *net.OpError (Op
// "local error" or "remote error") around a value of that type, as
// crypto/tls does around its own.
var AlertPkgPath = reflect.TypeOf(gotls.AlertError(0)).PkgPath()
