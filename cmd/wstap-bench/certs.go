package main

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wstap/wstap/internal/platform"
)

// certFiles are the throwaway CA and the loopback leaf every server of the
// run presents (echo server, nginx, HAProxy, mitmproxy).
type certFiles struct {
	CA       string // CA certificate, PEM
	Cert     string // leaf certificate, PEM
	Key      string // leaf key, PEM
	Combined string // leaf certificate then key (HAProxy, mitmproxy)
	pool     *x509.CertPool
}

// makeCerts writes the platform's throwaway CA and leaf (platform.NewCerts)
// into dir.
func makeCerts(dir string) (*certFiles, error) {
	c, err := platform.NewCerts()
	if err != nil {
		return nil, err
	}
	f := &certFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "leaf.pem"),
		Key: filepath.Join(dir, "leaf-key.pem"), Combined: filepath.Join(dir, "leaf-combined.pem"), pool: c.Pool}
	for path, data := range map[string][]byte{f.CA: c.CAPEM, f.Cert: c.LeafPEM, f.Key: c.KeyPEM,
		f.Combined: append(append([]byte{}, c.LeafPEM...), c.KeyPEM...)} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return f, nil
}
