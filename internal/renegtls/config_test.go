package renegtls

import (
	"crypto/tls"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"

	gotls "github.com/wstap/wstap/internal/renegtls/gotls"
)

// TestEveryConfigFieldDecided: each exported field of crypto/tls.Config is
// carried, refused or server-only, and each carried one exists in the
// patched Config; a Go release that adds a field fails here until it is
// placed.
func TestEveryConfigFieldDecided(t *testing.T) {
	std := reflect.TypeFor[tls.Config]()
	fork := reflect.TypeFor[gotls.Config]()
	for f := range std.Fields() {
		if !f.IsExported() {
			continue
		}
		lists := 0
		for _, l := range [][]string{carried, refused, serverOnly} {
			if slices.Contains(l, f.Name) {
				lists++
			}
		}
		if lists != 1 {
			t.Errorf("tls.Config.%s is in %d of the lists carried, refused, serverOnly; want 1", f.Name, lists)
		}
		if _, ok := fork.FieldByName(f.Name); slices.Contains(carried, f.Name) && !ok {
			t.Errorf("tls.Config.%s is carried but the patched Config has no such field", f.Name)
		}
	}
}

// TestConfigCarried: a client built from a Config with every carried field
// set has them in the patched Config, with the same values.
func TestConfigCarried(t *testing.T) {
	cfg := &tls.Config{ServerName: "example.org", NextProtos: []string{"http/1.1"}, InsecureSkipVerify: true,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, SessionTicketsDisabled: true,
		MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256},
		DynamicRecordSizingDisabled: true, Renegotiation: tls.RenegotiateOnceAsClient, KeyLogWriter: &strings.Builder{},
		Certificates:     []tls.Certificate{{Certificate: [][]byte{{1, 2}}, SupportedSignatureAlgorithms: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256}}},
		VerifyConnection: func(tls.ConnectionState) error { return nil }}
	f, err := forkConfig(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sv, fv := reflect.ValueOf(cfg).Elem(), reflect.ValueOf(f).Elem()
	for _, name := range carried {
		s, g := sv.FieldByName(name), fv.FieldByName(name)
		switch s.Kind() {
		case reflect.Func, reflect.Interface, reflect.Pointer:
			if s.IsNil() != g.IsNil() {
				t.Errorf("%s: set %v, carried %v", name, !s.IsNil(), !g.IsNil())
			}
		default:
			if a, b := reflect.ValueOf(s.Interface()), reflect.ValueOf(g.Interface()); !sameShape(a, b) {
				t.Errorf("%s: %v carried as %v", name, s.Interface(), g.Interface())
			}
		}
	}
}

// sameShape compares values of crypto/tls and patched types field by field.
func sameShape(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameShape(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Struct:
		for i := range a.NumField() {
			if !sameShape(a.Field(i), b.FieldByName(a.Type().Field(i).Name)) {
				return false
			}
		}
		return true
	case reflect.Interface, reflect.Pointer:
		return a.IsNil() == b.IsNil()
	}
	return a.Kind() == b.Kind() && a.Convert(b.Type()).Interface() == b.Interface()
}

// TestRefusedField: a Config field Client cannot honour is an error that
// names it, not a silent difference.
func TestRefusedField(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	_, err := Client(a, &tls.Config{ClientSessionCache: tls.NewLRUClientSessionCache(1)}, Options{})
	if err == nil || !strings.Contains(err.Error(), "ClientSessionCache") {
		t.Fatalf("Client with a crypto/tls session cache: %v, want an error naming ClientSessionCache", err)
	}
}

// TestConnectionStateFields: stdState fills every exported field of
// tls.ConnectionState that the patched ConnectionState has.
func TestConnectionStateFields(t *testing.T) {
	var fs gotls.ConnectionState
	fv := reflect.ValueOf(&fs).Elem()
	for i := range fv.NumField() {
		if f := fv.Type().Field(i); f.IsExported() {
			fillNonZero(t, fv.Field(i), f.Name)
		}
	}
	sv := reflect.ValueOf(stdState(fs))
	for f := range reflect.TypeFor[tls.ConnectionState]().Fields() {
		if f.IsExported() && sv.FieldByName(f.Name).IsZero() {
			t.Errorf("tls.ConnectionState.%s is not carried from the patched state", f.Name)
		}
	}
}

func fillNonZero(t *testing.T, v reflect.Value, name string) {
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Uint16:
		v.SetUint(1)
	case reflect.String:
		v.SetString("x")
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
	default:
		t.Fatalf("ConnectionState.%s: kind %s not filled", name, v.Kind())
	}
}
