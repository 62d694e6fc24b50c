package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/wstap/wstap/internal/testkit"
)

// caRun runs "wstap ARGS..." with WSTAP_CA_DIR pointing at a fresh directory,
// so no test touches the user's own CA.
func caRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func caTestDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	t.Setenv("WSTAP_CA_DIR", dir)
	return dir
}

func TestCACmdInitCreatesThenKeeps(t *testing.T) {
	dir := caTestDir(t)
	code, out, errOut := caRun(t, "ca", "init")
	if code != 0 || !strings.Contains(out, "Created a new local CA in "+dir) {
		t.Fatalf("first ca init: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	fi, err := os.Stat(filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("ca-key.pem mode %04o, want 0600", fi.Mode().Perm())
	}
	before, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	code, out, _ = caRun(t, "ca", "init")
	if code != 0 || !strings.Contains(out, "already exists") {
		t.Errorf("second ca init: exit %d, stdout %s", code, out)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if !bytes.Equal(before, after) {
		t.Error("second ca init replaced the CA")
	}

	// --ca-dir wins over WSTAP_CA_DIR.
	other := filepath.Join(t.TempDir(), "other")
	if code, out, errOut := caRun(t, "ca", "init", "--ca-dir", other); code != 0 || !strings.Contains(out, other) {
		t.Errorf("ca init --ca-dir: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(other, "ca.pem")); err != nil {
		t.Errorf("ca init --ca-dir %s: %v", other, err)
	}
}

func TestCACmdShowsTrustHints(t *testing.T) {
	dir := caTestDir(t)
	code, out, errOut := caRun(t, "ca")
	if code != 0 {
		t.Fatalf("wstap ca: exit %d, stderr %s", code, errOut)
	}
	pemPath := filepath.Join(dir, "ca.pem")
	for _, want := range []string{
		"directory     " + dir,
		"certificate   " + pemPath,
		"SHA-256       ",
		"wstap ca export --format p12 --out wstap-ca.p12",
		"-Djavax.net.ssl.trustStore=wstap-ca.p12 -Djavax.net.ssl.trustStorePassword=changeit",
		"jmeter -n -t plan.jmx -H 127.0.0.1 -P 8080",
		"curl --cacert " + pemPath,
		"NODE_EXTRA_CA_CERTS=" + pemPath,
		"mkdir -p $HOME/.pki/nssdb && certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n wstap -i " + pemPath,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("wstap ca output lacks %q:\n%s", want, out)
		}
	}
}

func TestCACmdExportPEM(t *testing.T) {
	dir := caTestDir(t)
	file := filepath.Join(t.TempDir(), "wstap-ca.pem")
	code, out, errOut := caRun(t, "ca", "export", "--format", "pem", "--out", file)
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if !bytes.Equal(got, want) {
		t.Error("exported PEM differs from ca.pem")
	}
	block, _ := pem.Decode(got)
	if block == nil {
		t.Fatal("exported file holds no PEM block")
	}
	if c, err := x509.ParseCertificate(block.Bytes); err != nil || !c.IsCA {
		t.Errorf("exported certificate: %v (IsCA %v)", err, c != nil && c.IsCA)
	}

	// --out - writes the certificate alone to stdout.
	code, out, _ = caRun(t, "ca", "export", "--out", "-")
	if code != 0 || out != string(want) {
		t.Errorf("export --out -: exit %d, stdout is not ca.pem:\n%s", code, out)
	}
}

func TestCACmdExportP12(t *testing.T) {
	caTestDir(t)
	for _, tc := range []struct {
		password string
		args     []string
	}{
		{"changeit", nil},
		{"s3cret", []string{"--password", "s3cret"}},
	} {
		file := filepath.Join(t.TempDir(), "wstap-ca.p12")
		args := append([]string{"ca", "export", "--format", "p12", "--out", file}, tc.args...)
		code, out, errOut := caRun(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\nstdout %s\nstderr %s", args, code, out, errOut)
		}
		if !strings.Contains(out, "-Djavax.net.ssl.trustStore="+file) {
			t.Errorf("%v: stdout does not show the trust-store property:\n%s", args, out)
		}
		if tc.password != "changeit" && strings.Contains(out, tc.password) {
			t.Errorf("%v: stdout echoes the chosen password:\n%s", args, out)
		}
		der, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		certs, err := pkcs12.DecodeTrustStore(der, tc.password)
		if err != nil || len(certs) != 1 || certs[0].Subject.CommonName != "wstap local CA" {
			t.Errorf("%v: DecodeTrustStore: %v, %d certificates", args, err, len(certs))
		}
	}
}

// TestCACmdExportP12Keytool checks the exported trust store with Java's own keytool.
func TestCACmdExportP12Keytool(t *testing.T) {
	keytool := testkit.NeedTool(t, "keytool")
	caTestDir(t)
	file := filepath.Join(t.TempDir(), "wstap-ca.p12")
	if code, _, errOut := caRun(t, "ca", "export", "--format", "p12", "--out", file); code != 0 {
		t.Fatalf("export: exit %d: %s", code, errOut)
	}
	out, err := exec.Command(keytool, "-list", "-storetype", "PKCS12", "-keystore", file, "-storepass", "changeit").CombinedOutput()
	if err != nil {
		t.Fatalf("keytool -list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "wstap, ") || !strings.Contains(string(out), "trustedCertEntry") {
		t.Errorf("keytool -list does not show the wstap trustedCertEntry:\n%s", out)
	}
}

func TestCACmdUsageErrors(t *testing.T) {
	dir := caTestDir(t)
	out := filepath.Join(t.TempDir(), "x")
	for _, tc := range []struct {
		args []string
		want []string // each must appear in stderr
	}{
		{[]string{"ca", "--bogus"}, []string{"-bogus"}},
		{[]string{"ca", "init", "--bogus"}, []string{"-bogus"}},
		{[]string{"ca", "export", "--bogus", "--out", out}, []string{"-bogus"}},
		{[]string{"ca", "export", "--format", "der", "--out", out}, []string{"--format", `"der"`, "pem or p12"}},
		{[]string{"ca", "export", "--format", "p12"}, []string{"--out"}},
		{[]string{"ca", "export", "--format", "pem", "--password", "x", "--out", out}, []string{"--password", "p12"}},
		{[]string{"ca", "export", "--out"}, []string{"-out"}},
		{[]string{"ca", "frobnicate"}, []string{`"frobnicate"`, "init or export"}},
		{[]string{"ca", "init", "extra"}, []string{`"extra"`}},
	} {
		code, stdout, stderr := caRun(t, tc.args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (stdout %q)", tc.args, code, stdout)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: stderr %q does not name %q", tc.args, stderr, w)
			}
		}
	}
	// Usage errors are refused before any work: no CA was created.
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("usage errors created the CA directory %s (stat: %v)", dir, err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("usage errors wrote %s", out)
	}
}

func TestCACmdHelp(t *testing.T) {
	caTestDir(t)
	for _, args := range [][]string{{"ca", "--help"}, {"ca", "-h"}, {"ca", "init", "--help"}, {"ca", "export", "--help"}} {
		code, out, errOut := caRun(t, args...)
		if code != 0 || errOut != "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
		if !strings.Contains(out, "Examples:") || !strings.Contains(out, "wstap ca") || !strings.Contains(out, "-ca-dir") {
			t.Errorf("%v: help lacks examples or flags:\n%s", args, out)
		}
	}
}

func TestCACmdRefusesReadableKey(t *testing.T) {
	dir := caTestDir(t)
	if code, _, errOut := caRun(t, "ca", "init"); code != 0 {
		t.Fatalf("ca init: exit %d: %s", code, errOut)
	}
	key := filepath.Join(dir, "ca-key.pem")
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := caRun(t, "ca")
	if code != 1 || !strings.Contains(errOut, "chmod 600 "+key) {
		t.Errorf("readable key: exit %d, stderr %q; want 1 and the chmod fix", code, errOut)
	}
}
