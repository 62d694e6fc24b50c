package godebug

import "testing"

// TestLookup: the last name=value for a name wins, as in the runtime.
func TestLookup(t *testing.T) {
	for _, c := range []struct{ env, name, want string }{
		{"", "tlsrsakex", ""},
		{"tlsrsakex=1", "tlsrsakex", "1"},
		{"tls3des=1,tlsrsakex=1", "tlsrsakex", "1"},
		{"tlsrsakex=1,tlsrsakex=0", "tlsrsakex", "0"},
		{"tlsrsakexx=1", "tlsrsakex", ""},
		{"x509keypairleaf=0, tlsrsakex=1", "tlsrsakex", "1"},
	} {
		if got := lookup(c.env, c.name); got != c.want {
			t.Errorf("lookup(%q, %q) = %q, want %q", c.env, c.name, got, c.want)
		}
	}
}

func TestSettingReadsEnvironment(t *testing.T) {
	t.Setenv("GODEBUG", "tlsmlkem=0")
	if v := New("tlsmlkem").Value(); v != "0" {
		t.Fatalf("Value() = %q with GODEBUG=tlsmlkem=0", v)
	}
}
