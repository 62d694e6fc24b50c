package proxy

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"reflect"
	"strings"

	"github.com/wstap/wstap/internal/renegtls"
)

// isTLSPkg reports whether path is crypto/tls or its patched copy that
// wstap's upstream leg runs on (internal/renegtls).
func isTLSPkg(path string) bool { return path == "crypto/tls" || path == renegtls.AlertPkgPath }

// tlsAlert returns the TLS alert an error carries (RFC 8446 §6). crypto/tls
// reports one as a *net.OpError, Op "remote error" when the peer sent it and
// "local error" when crypto/tls sent it, around its unexported alert type;
// only a QUIC transport wraps tls.AlertError instead.
func tlsAlert(err error) (alert error, remote bool) {
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return ae, false
	}
	var rae renegtls.AlertError
	if errors.As(err, &rae) {
		return rae, false
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Err == nil {
		return nil, false
	}
	if t := reflect.TypeOf(oe.Err); !isTLSPkg(t.PkgPath()) || t.Name() != "alert" {
		return nil, false
	}
	return oe.Err, oe.Op == "remote error"
}

// isTLSError reports whether err, returned by a read or write on c, is an
// error of TLS itself rather than of the TCP connection under it: a record
// that is not TLS, an alert, a certificate that failed verification, or one
// of the plain errors crypto/tls reports a broken record stream with (its
// "too many ignored records" and the like carry no type of their own). What
// the TCP connection reports reaches the caller as a *net.OpError (an alert
// aside), io.EOF or io.ErrUnexpectedEOF (a record cut by a FIN).
func isTLSError(c net.Conn, err error) bool {
	if isRecordHeaderError(err) || isCertificateError(err) {
		return true
	}
	if a, _ := tlsAlert(err); a != nil {
		return true
	}
	if !isTLSConn(c) {
		return false
	}
	var oe *net.OpError
	return !errors.As(err, &oe) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
		!errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, net.ErrClosed)
}

// alertOf names the TLS alert of a handshake error for the record: the one
// the peer sent ("bad certificate" when it refused ours), "bad certificate"
// when we refused the peer's, "not tls" when the first record was not TLS.
func alertOf(err error) string {
	if a, remote := tlsAlert(err); a != nil {
		var ae tls.AlertError
		if remote || errors.As(err, &ae) {
			// The alert's own text is "tls: " and its RFC 8446 §6 name.
			return strings.TrimPrefix(a.Error(), "tls: ")
		}
	}
	if isCertificateError(err) {
		return "bad certificate"
	}
	// crypto/tls sets a RecordHeaderError's Conn only when the first record
	// did not look like a TLS handshake.
	var rh tls.RecordHeaderError
	var rrh renegtls.RecordHeaderError
	if errors.As(err, &rh) && rh.Conn != nil || errors.As(err, &rrh) && rrh.Conn != nil {
		return "not tls"
	}
	return ""
}

// isTLSConn reports whether c is a TLS leg: wstap's TLS server on the client
// leg (crypto/tls) or its TLS client on the upstream leg (renegtls).
func isTLSConn(c net.Conn) bool {
	switch c.(type) {
	case *tls.Conn, *renegtls.Conn:
		return true
	}
	return false
}

// isRecordHeaderError: a record that was not TLS, from either TLS stack.
func isRecordHeaderError(err error) bool {
	var rh tls.RecordHeaderError
	var rrh renegtls.RecordHeaderError
	return errors.As(err, &rh) || errors.As(err, &rrh)
}

// isCertificateError: a certificate that failed verification, from either
// TLS stack.
func isCertificateError(err error) bool {
	var cv *tls.CertificateVerificationError
	var rcv *renegtls.CertificateVerificationError
	return errors.As(err, &cv) || errors.As(err, &rcv)
}
