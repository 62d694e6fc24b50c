package frames

import (
	"strconv"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// CloseInfo is a decoded close frame body (RFC 6455 §5.5.1).
type CloseInfo struct {
	// Code is 1005 (No Status Rcvd, §7.1.5) when the body is empty.
	Code   int
	Reason string
	// Problem says why the frame breaks §5.5.1/§7.4, "" when it is valid.
	Problem string
}

// DecodeClose decodes a close payload (already unmasked). It allocates the
// reason string only; close frames are rare.
func DecodeClose(p []byte) CloseInfo {
	switch {
	case len(p) == 0:
		return CloseInfo{Code: int(ws.StatusNoStatusRcvd)}
	case len(p) == 1:
		// §5.5.1: a body, if present, starts with a 2-byte code.
		return CloseInfo{Code: int(ws.StatusNoStatusRcvd), Problem: "close payload of 1 byte: no room for a status code"}
	}
	code, reason := ws.ParseCloseFrameData(p)
	ci := CloseInfo{Code: int(code), Reason: reason}
	if !utf8.ValidString(reason) {
		ci.Problem = "close reason is not valid UTF-8 (§5.5.1)"
	} else if !SendableCode(ci.Code) {
		ci.Problem = "close code " + strconv.Itoa(ci.Code) + " may not be sent in a close frame (§7.4.1)"
	}
	return ci
}

// SendableCode reports whether an endpoint may put code in a close frame
// (RFC 6455 §7.4.1 and §7.4.2): 1000–1003, 1007–1011 (1012–1014 registered
// since with IANA), 3000–4999. 1005, 1006 and 1015 are reserved for
// reporting and must never travel on the wire.
func SendableCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// CodeName names a close code (RFC 6455 §7.4.1 and the IANA registry).
func CodeName(code int) string {
	switch code {
	case 1000:
		return "Normal Closure"
	case 1001:
		return "Going Away"
	case 1002:
		return "Protocol Error"
	case 1003:
		return "Unsupported Data"
	case 1005:
		return "No Status Received"
	case 1006:
		return "Abnormal Closure"
	case 1007:
		return "Invalid Payload Data"
	case 1008:
		return "Policy Violation"
	case 1009:
		return "Message Too Big"
	case 1010:
		return "Mandatory Extension"
	case 1011:
		return "Internal Error"
	case 1012:
		return "Service Restart"
	case 1013:
		return "Try Again Later"
	case 1014:
		return "Bad Gateway"
	case 1015:
		return "TLS Handshake"
	}
	switch {
	case code >= 3000 && code <= 3999:
		return "Registered (library/framework)"
	case code >= 4000 && code <= 4999:
		return "Private (application)"
	}
	return "Unknown"
}
