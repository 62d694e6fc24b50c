package proxy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/wstap/wstap/internal/atomicfile"
)

// File names inside the CA directory.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca-key.pem"
)

const (
	// caCommonName is the subject CN of the local CA, as users see it in trust stores.
	caCommonName = "wstap local CA"
	// caLifetime: ten years, so a CA trusted once keeps working across many load-test campaigns.
	caLifetime = 10 * 365 * 24 * time.Hour
	// leafLifetime is 397 days: the CA/Browser Forum Baseline Requirements
	// (section 6.3.2, ballot SC31, since 1 September 2020) and Apple's and
	// Chrome's policies cap TLS server certificates at 398 days; one day less
	// stays clear of off-by-one readings of that limit.
	leafLifetime = 397 * 24 * time.Hour
	// backdate covers clock skew between wstap and the client (a VM or a
	// container whose clock lags), so a fresh certificate is not "not yet valid".
	backdate = time.Hour
	// renewBefore: a cached leaf this close to its NotAfter is minted again, so a
	// long-running proxy never hands out a certificate that expires mid-session.
	renewBefore = 24 * time.Hour
	// p12Alias is the alias of the CA entry in an exported PKCS#12 trust store (keytool -list shows it).
	p12Alias = "wstap"
)

// CA is the local certificate authority that signs per-host leaf certificates
// for TLS interception. Its methods are safe for concurrent use.
type CA struct {
	// Cert is the CA certificate.
	Cert *x509.Certificate
	// CertPEM is Cert in PEM form, as stored in Dir/ca.pem.
	CertPEM []byte
	// Dir is the directory holding ca.pem and ca-key.pem.
	Dir string
	// Created is true when LoadOrCreateCA generated this CA just now.
	Created bool

	key    *ecdsa.PrivateKey
	pool   *x509.CertPool
	now    func() time.Time
	minted atomic.Int64

	mu     sync.Mutex
	leaves map[string]*leafEntry
}

// leafEntry is one cached leaf; ready is closed once cert or err is set, so
// concurrent callers for the same host wait for a single mint.
type leafEntry struct {
	ready chan struct{}
	cert  *tls.Certificate
	err   error
}

// DefaultCADir returns $WSTAP_CA_DIR when set, otherwise wstap/ca under the
// user's configuration directory (~/.config/wstap/ca on Linux).
func DefaultCADir() string {
	if d := os.Getenv("WSTAP_CA_DIR"); d != "" {
		return d
	}
	cfg, err := os.UserConfigDir()
	if err != nil {
		// No $HOME or $XDG_CONFIG_HOME: fall back to the working directory
		// rather than failing, so the proxy still starts in bare containers.
		return filepath.Join(".wstap", "ca")
	}
	return filepath.Join(cfg, "wstap", "ca")
}

// LoadOrCreateCA loads the CA from dir, or creates dir (mode 0700) with a new
// ECDSA P-256 CA (ca.pem, and ca-key.pem with mode 0600) when dir holds neither
// file. A key file readable by group or others is refused.
func LoadOrCreateCA(dir string) (*CA, error) {
	certPath := filepath.Join(dir, CACertFile)
	keyPath := filepath.Join(dir, CAKeyFile)
	certExists, err := exists(certPath)
	if err != nil {
		return nil, err
	}
	keyExists, err := exists(keyPath)
	if err != nil {
		return nil, err
	}
	switch {
	case certExists && keyExists:
		return loadCA(dir)
	case certExists:
		return nil, fmt.Errorf("CA certificate %s exists but its key %s is missing: restore the key, or move %s away to create a new CA", certPath, keyPath, dir)
	case keyExists:
		return nil, fmt.Errorf("CA key %s exists but its certificate %s is missing: restore the certificate, or move %s away to create a new CA", keyPath, certPath, dir)
	}
	return createCA(dir)
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("checking %s: %w", path, err)
}

func createCA(dir string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating CA directory %s: %w", dir, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: caCommonName, Organization: []string{"wstap"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(-backdate).Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// The CA signs leaves only, never intermediate CAs.
		MaxPathLen:     0,
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding CA key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// The key goes first: a crash between the two writes leaves a key without
	// a certificate, which LoadOrCreateCA reports instead of silently replacing.
	if err := atomicfile.WriteFile(filepath.Join(dir, CAKeyFile), keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, CACertFile), certPEM, 0o644); err != nil {
		return nil, err
	}
	ca, err := newCA(dir, certPEM, key)
	if err != nil {
		return nil, err
	}
	ca.Created = true
	return ca, nil
}

func loadCA(dir string) (*CA, error) {
	keyPath := filepath.Join(dir, CAKeyFile)
	certPath := filepath.Join(dir, CACertFile)
	if runtime.GOOS != "windows" { // Windows has no Unix permission bits to check.
		fi, err := os.Stat(keyPath)
		if err != nil {
			return nil, fmt.Errorf("checking CA key %s: %w", keyPath, err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("CA key %s has mode %04o and is readable by others; fix it with: chmod 600 %s", keyPath, fi.Mode().Perm(), keyPath)
		}
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("reading CA key %s: %w", keyPath, err)
	}
	key, err := parseECKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("reading CA key %s: %w", keyPath, err)
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("reading CA certificate %s: %w", certPath, err)
	}
	return newCA(dir, certPEM, key)
}

// parseECKey accepts a PKCS#8 ("PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY") ECDSA key.
func parseECKey(keyPEM []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if block.Type == "EC PRIVATE KEY" {
		return x509.ParseECPrivateKey(block.Bytes)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is a %T, want an ECDSA key", k)
	}
	return ec, nil
}

// newCA checks that certPEM is a CA certificate matching key and builds the CA.
func newCA(dir string, certPEM []byte, key *ecdsa.PrivateKey) (*CA, error) {
	certPath := filepath.Join(dir, CACertFile)
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("reading CA certificate %s: no CERTIFICATE PEM block", certPath)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("reading CA certificate %s: %w", certPath, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("CA certificate %s is not a CA (basic constraints CA:FALSE)", certPath)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("CA key %s does not match certificate %s", filepath.Join(dir, CAKeyFile), certPath)
	}
	if now := time.Now(); now.After(cert.NotAfter) {
		return nil, fmt.Errorf("CA certificate %s expired on %s: move %s away and run 'wstap ca init'", certPath, cert.NotAfter.Format(time.DateOnly), dir)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{
		Cert:    cert,
		CertPEM: certPEM,
		Dir:     dir,
		key:     key,
		pool:    pool,
		now:     time.Now,
		leaves:  make(map[string]*leafEntry),
	}, nil
}

// randomSerial returns a random 128-bit serial number (RFC 5280 section
// 4.1.2.2 allows up to 20 octets; the CA/B Forum asks for 64 random bits or more).
func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	return serial, nil
}

// CertPath is the path of the CA certificate, ca.pem.
func (c *CA) CertPath() string { return filepath.Join(c.Dir, CACertFile) }

// KeyPath is the path of the CA key, ca-key.pem.
func (c *CA) KeyPath() string { return filepath.Join(c.Dir, CAKeyFile) }

// Fingerprint is the SHA-256 of the CA certificate, colon-separated upper-case
// hex, as keytool -list and browsers show it.
func (c *CA) Fingerprint() string {
	sum := sha256.Sum256(c.Cert.Raw)
	hex := make([]string, len(sum))
	for i, b := range sum {
		hex[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(hex, ":")
}

// Pool returns a certificate pool holding only the CA, for clients that must
// trust wstap's leaves (tests, the load generator).
func (c *CA) Pool() *x509.CertPool { return c.pool }

// Minted is the number of leaf certificates minted since the CA was loaded.
func (c *CA) Minted() int64 { return c.minted.Load() }

// normalizeHost lower-cases host and drops a trailing dot, IPv6 brackets and a
// port, so "Example.COM.", "example.com:443" and "example.com" share one leaf.
func normalizeHost(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// Leaf returns a certificate for host (a DNS name or an IP address, an
// optional :port is ignored), valid also for localhost, 127.0.0.1 and ::1, with
// the CA certificate in its chain. Leaves are cached per host and minted
// once however many callers ask at the same time; a cached leaf within 24 hours
// of expiry is minted again.
func (c *CA) Leaf(host string) (*tls.Certificate, error) {
	host = normalizeHost(host)
	if host == "" {
		return nil, errors.New("minting leaf certificate: empty host name")
	}
	for {
		c.mu.Lock()
		e, ok := c.leaves[host]
		if !ok {
			e = &leafEntry{ready: make(chan struct{})}
			c.leaves[host] = e
			c.mu.Unlock()
			e.cert, e.err = c.mint(host)
			if e.err != nil {
				// Forget the failure so a later call tries again.
				c.mu.Lock()
				delete(c.leaves, host)
				c.mu.Unlock()
			}
			close(e.ready)
			return e.cert, e.err
		}
		c.mu.Unlock()
		<-e.ready
		if e.err != nil {
			return nil, e.err
		}
		if c.now().Add(renewBefore).Before(e.cert.Leaf.NotAfter) {
			return e.cert, nil
		}
		// Close to expiry: drop it (unless another caller already did) and loop to mint anew.
		c.mu.Lock()
		if c.leaves[host] == e {
			delete(c.leaves, host)
		}
		c.mu.Unlock()
	}
}

// mint signs a new leaf for host.
func (c *CA) mint(host string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating leaf key for %s: %w", host, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	notBefore := c.now().Add(-backdate)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: host, Organization: []string{"wstap"}},
		NotBefore:    notBefore,
		NotAfter:     notBefore.Add(leafLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	addSAN(tmpl, host)
	addSAN(tmpl, "localhost")
	addSAN(tmpl, "127.0.0.1")
	addSAN(tmpl, "::1")
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.Cert, &key.PublicKey, c.key)
	if err != nil {
		return nil, fmt.Errorf("signing leaf certificate for %s: %w", host, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing leaf certificate for %s: %w", host, err)
	}
	c.minted.Add(1)
	return &tls.Certificate{
		Certificate: [][]byte{der, c.Cert.Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}, nil
}

// addSAN adds name to tmpl as an IP or DNS subject alternative name, once.
func addSAN(tmpl *x509.Certificate, name string) {
	if ip := net.ParseIP(name); ip != nil {
		for _, have := range tmpl.IPAddresses {
			if have.Equal(ip) {
				return
			}
		}
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		return
	}
	for _, have := range tmpl.DNSNames {
		if have == name {
			return
		}
	}
	tmpl.DNSNames = append(tmpl.DNSNames, name)
}

// GetCertificate returns a tls.Config.GetCertificate callback that serves the
// leaf for the client's SNI name, or for fallbackHost (the CONNECT host or
// the upstream host) when the client sent none, as clients do for IP
// addresses; with neither it serves the leaf for localhost.
func (c *CA) GetCertificate(fallbackHost string) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		host := hello.ServerName
		if host == "" {
			host = fallbackHost
		}
		if host == "" {
			host = "localhost"
		}
		return c.Leaf(host)
	}
}

// ExportPEM writes the CA certificate in PEM form (for curl --cacert,
// NODE_EXTRA_CA_CERTS and browsers).
func (c *CA) ExportPEM(w io.Writer) error {
	if _, err := io.Copy(w, bytes.NewReader(c.CertPEM)); err != nil {
		return fmt.Errorf("writing CA certificate: %w", err)
	}
	return nil
}

// ExportP12 writes a PKCS#12 trust store holding the CA as a trusted
// certificate entry (alias "wstap"), which Java accepts through
// -Djavax.net.ssl.trustStore=FILE -Djavax.net.ssl.trustStorePassword=PASSWORD.
// It uses PBES2/AES-256 with an HMAC-SHA-256 MAC (pkcs12.Modern2023), which
// Java reads since JDK 12 (go-pkcs12's documentation) and its keytool
// writes by default since JDK 20.
func (c *CA) ExportP12(w io.Writer, password string) error {
	der, err := pkcs12.Modern2023.EncodeTrustStoreEntries([]pkcs12.TrustStoreEntry{{Cert: c.Cert, FriendlyName: p12Alias}}, password)
	if err != nil {
		return fmt.Errorf("encoding PKCS#12 trust store: %w", err)
	}
	if _, err := w.Write(der); err != nil {
		return fmt.Errorf("writing PKCS#12 trust store: %w", err)
	}
	return nil
}
