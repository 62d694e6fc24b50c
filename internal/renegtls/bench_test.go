package renegtls

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
)

// benchmarkRead reads 16 KiB chunks that a crypto/tls server writes over
// loopback TCP, through the client dial makes: the patch adds a check for
// held data to every Read.
func benchmarkRead(b *testing.B, dial func(net.Conn) (tlsClient, error)) {
	certFile, keyFile, _ := testCert(b, b.TempDir())
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		sc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: tls.VersionTLS12})
		defer sc.Close()
		chunk := make([]byte, 16<<10)
		for {
			if _, err := sc.Write(chunk); err != nil {
				return
			}
		}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	c, err := dial(raw)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Handshake(); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 16<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadStdlib(b *testing.B) {
	benchmarkRead(b, func(c net.Conn) (tlsClient, error) {
		return tls.Client(c, &tls.Config{InsecureSkipVerify: true}), nil
	})
}

func BenchmarkReadRenegtls(b *testing.B) {
	benchmarkRead(b, func(c net.Conn) (tlsClient, error) {
		return Client(c, &tls.Config{InsecureSkipVerify: true}, Options{})
	})
}
