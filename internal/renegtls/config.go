package renegtls

import (
	"crypto/tls"
	"fmt"

	gotls "github.com/wstap/wstap/internal/renegtls/gotls"
)

// carried lists the crypto/tls.Config fields a client uses that forkConfig
// copies into the patched package's Config.
var carried = []string{"Rand", "Time", "Certificates", "VerifyPeerCertificate", "VerifyConnection",
	"RootCAs", "NextProtos", "ServerName", "InsecureSkipVerify", "CipherSuites", "SessionTicketsDisabled",
	"MinVersion", "MaxVersion", "CurvePreferences", "DynamicRecordSizingDisabled", "Renegotiation", "KeyLogWriter"}

// refused lists the client fields Client refuses when set: their values are
// typed by crypto/tls (a session cache holds crypto/tls sessions) or wstap
// does not use them (client certificates chosen per request, ECH).
var refused = []string{"GetClientCertificate", "ClientSessionCache",
	"EncryptedClientHelloConfigList", "EncryptedClientHelloRejectionVerify"}

// serverOnly lists the fields only a TLS server reads; Client ignores them.
var serverOnly = []string{"NameToCertificate", "GetCertificate", "GetConfigForClient", "ClientAuth",
	"ClientCAs", "PreferServerCipherSuites", "SessionTicketKey", "UnwrapSession", "WrapSession",
	"GetEncryptedClientHelloKeys", "EncryptedClientHelloKeys"}

// forkConfig converts cfg into the patched package's Config.
func forkConfig(cfg *tls.Config, opts Options) (*gotls.Config, error) {
	if err := refuse(cfg); err != nil {
		return nil, err
	}
	f := &gotls.Config{
		Rand:                        cfg.Rand,
		Time:                        cfg.Time,
		VerifyPeerCertificate:       cfg.VerifyPeerCertificate,
		RootCAs:                     cfg.RootCAs,
		NextProtos:                  cfg.NextProtos,
		ServerName:                  cfg.ServerName,
		InsecureSkipVerify:          cfg.InsecureSkipVerify,
		CipherSuites:                cfg.CipherSuites,
		SessionTicketsDisabled:      cfg.SessionTicketsDisabled,
		MinVersion:                  cfg.MinVersion,
		MaxVersion:                  cfg.MaxVersion,
		DynamicRecordSizingDisabled: cfg.DynamicRecordSizingDisabled,
		Renegotiation:               gotls.RenegotiationSupport(cfg.Renegotiation),
		KeyLogWriter:                cfg.KeyLogWriter,
		ClientSessionCache:          opts.SessionCache,
	}
	for _, c := range cfg.Certificates {
		f.Certificates = append(f.Certificates, forkCertificate(c))
	}
	for _, id := range cfg.CurvePreferences {
		f.CurvePreferences = append(f.CurvePreferences, gotls.CurveID(id))
	}
	if v := cfg.VerifyConnection; v != nil {
		f.VerifyConnection = func(cs gotls.ConnectionState) error { return v(stdState(cs)) }
	}
	return f, nil
}

// refuse returns an error naming the first refused field cfg sets.
func refuse(cfg *tls.Config) error {
	set := map[string]bool{
		"GetClientCertificate":                cfg.GetClientCertificate != nil,
		"ClientSessionCache":                  cfg.ClientSessionCache != nil,
		"EncryptedClientHelloConfigList":      cfg.EncryptedClientHelloConfigList != nil,
		"EncryptedClientHelloRejectionVerify": cfg.EncryptedClientHelloRejectionVerify != nil,
	}
	for _, name := range refused {
		if set[name] {
			return fmt.Errorf("renegtls: tls.Config.%s is not supported (see Options)", name)
		}
	}
	return nil
}

func forkCertificate(c tls.Certificate) gotls.Certificate {
	f := gotls.Certificate{Certificate: c.Certificate, PrivateKey: c.PrivateKey, OCSPStaple: c.OCSPStaple,
		SignedCertificateTimestamps: c.SignedCertificateTimestamps, Leaf: c.Leaf}
	for _, s := range c.SupportedSignatureAlgorithms {
		f.SupportedSignatureAlgorithms = append(f.SupportedSignatureAlgorithms, gotls.SignatureScheme(s))
	}
	return f
}

// stdState converts the patched package's ConnectionState to crypto/tls's.
// ExportKeyingMaterial is not carried (its state is unexported).
func stdState(s gotls.ConnectionState) tls.ConnectionState {
	return tls.ConnectionState{
		Version:                     s.Version,
		HandshakeComplete:           s.HandshakeComplete,
		DidResume:                   s.DidResume,
		CipherSuite:                 s.CipherSuite,
		CurveID:                     tls.CurveID(s.CurveID),
		NegotiatedProtocol:          s.NegotiatedProtocol,
		NegotiatedProtocolIsMutual:  s.NegotiatedProtocolIsMutual, //nolint:staticcheck // carried as is
		ServerName:                  s.ServerName,
		PeerCertificates:            s.PeerCertificates,
		VerifiedChains:              s.VerifiedChains,
		SignedCertificateTimestamps: s.SignedCertificateTimestamps,
		OCSPResponse:                s.OCSPResponse,
		TLSUnique:                   s.TLSUnique,
		ECHAccepted:                 s.ECHAccepted,
		HelloRetryRequest:           s.HelloRetryRequest,
	}
}
