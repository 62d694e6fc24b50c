package platform

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// certValidity is how long the throwaway certificates are valid: long enough
// for any demo, test or benchmark run, short enough that a leaked copy is
// worthless soon.
const certValidity = 24 * time.Hour

// Certs are a throwaway CA and a leaf for 127.0.0.1, ::1 and localhost signed
// by it, both ECDSA P-256. A client or a proxy that trusts CAPEM (or Pool)
// trusts a server presenting Leaf.
type Certs struct {
	Leaf    tls.Certificate // the leaf and its key, as a server presents them
	CAPEM   []byte          // the CA certificate
	LeafPEM []byte          // the leaf certificate
	KeyPEM  []byte          // the leaf's key, PKCS #8
	Pool    *x509.CertPool  // holds the CA
}

// NewCerts makes a fresh CA and leaf.
func NewCerts() (*Certs, error) {
	caKey, ca, caDER, err := newCert(nil, nil, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "wstap throwaway CA", Organization: []string{"wstap"}},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	})
	if err != nil {
		return nil, fmt.Errorf("throwaway CA: %w", err)
	}
	key, leaf, leafDER, err := newCert(ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "wstap demo platform", Organization: []string{"wstap"}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	})
	if err != nil {
		return nil, fmt.Errorf("throwaway leaf: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the leaf's key: %w", err)
	}
	c := &Certs{
		Leaf:    tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key, Leaf: leaf},
		CAPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		LeafPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		Pool:    x509.NewCertPool(),
	}
	c.Pool.AddCert(ca)
	return c, nil
}

// newCert fills tmpl's serial and validity, makes its key and signs it with
// parentKey as parent, or by itself when parent is nil.
func newCert(parent *x509.Certificate, parentKey *ecdsa.PrivateKey, tmpl *x509.Certificate) (*ecdsa.PrivateKey, *x509.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generating key: %w", err)
	}
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)); err != nil {
		return nil, nil, nil, fmt.Errorf("generating serial: %w", err)
	}
	now := time.Now()
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(certValidity)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("signing: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("parsing: %w", err)
	}
	return key, cert, der, nil
}
