package proxy

import (
	"encoding/base64"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// Issue 14, item 5: the parts of forward mode's admission.

func TestParseAllow(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []AllowRule
		err  bool
	}{
		{"chat.example.com", []AllowRule{{"chat.example.com", ""}}, false},
		{"chat.example.com:443, api.example.com:8443", []AllowRule{{"chat.example.com", "443"}, {"api.example.com", "8443"}}, false},
		{"10.0.0.5:443", []AllowRule{{"10.0.0.5", "443"}}, false},
		{"[::1]:443,::1", []AllowRule{{"::1", "443"}, {"::1", ""}}, false},
		{"", nil, true},
		{" , ", nil, true},
		{"host:0", nil, true},
		{"host:70000", nil, true},
		{"host:https", nil, true},
		{"http://host", nil, true},
		{"user@host", nil, true},
	} {
		got, err := ParseAllow(c.in)
		if (err != nil) != c.err || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseAllow(%q) = %v, %v; want %v, error %v", c.in, got, err, c.want, c.err)
		}
		if err != nil && !errors.Is(err, ErrConfig) {
			t.Errorf("ParseAllow(%q): %v does not wrap ErrConfig", c.in, err)
		}
	}
}

func TestCheckProxyAuth(t *testing.T) {
	basic := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	const want = "alice:pw:with:colons"
	for _, c := range []struct {
		value, reason string
	}{
		{basic(want), ""},
		{"basic  " + base64.StdEncoding.EncodeToString([]byte(want)), ""}, // scheme names are case-insensitive (RFC 9110 §11.1)
		{"", "no Proxy-Authorization header"},
		{"Bearer abc", "scheme is not Basic"},
		{"Basic !!!", "not base64"},
		{basic("alice:pw"), "wrong user or password"},
		{basic("bob:pw:with:colons"), "wrong user or password"},
		{basic(want + "x"), "wrong user or password"},
	} {
		got := checkProxyAuth(want, c.value)
		if (c.reason == "") != (got == "") || !strings.Contains(got, c.reason) {
			t.Errorf("checkProxyAuth(%q) = %q, want %q", c.value, got, c.reason)
		}
		if strings.Contains(got, "pw") {
			t.Errorf("reason %q quotes the credentials", got)
		}
	}
}

func TestConfigCheckAdmission(t *testing.T) {
	ca := &CA{}
	up, _ := url.Parse("ws://127.0.0.1:9000")
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"forward, loopback", Config{Listen: "127.0.0.1:8080", CA: ca}, ""},
		{"forward, default listen", Config{CA: ca}, ""},
		{"forward, localhost", Config{Listen: "localhost:8080", CA: ca}, ""},
		{"forward, ::1", Config{Listen: "[::1]:8080", CA: ca}, ""},
		{"forward, all interfaces", Config{Listen: "0.0.0.0:8080", CA: ca}, "not loopback"},
		{"forward, empty host", Config{Listen: ":8080", CA: ca}, "not loopback"},
		{"forward, a host name", Config{Listen: "wstap.internal:8080", CA: ca}, "not loopback"},
		{"forward, off loopback, allow", Config{Listen: "0.0.0.0:8080", CA: ca, Allow: []AllowRule{{"h", ""}}}, ""},
		{"forward, off loopback, auth", Config{Listen: "0.0.0.0:8080", CA: ca, ProxyAuth: "u:p"}, ""},
		{"auth without colon", Config{Listen: "0.0.0.0:8080", CA: ca, ProxyAuth: "secretpw"}, "want USER:PASS"},
		{"auth without user", Config{Listen: "0.0.0.0:8080", CA: ca, ProxyAuth: ":secretpw"}, "want USER:PASS"},
		{"reverse, allow", Config{Upstream: up, Allow: []AllowRule{{"h", ""}}}, "forward mode"},
		{"reverse, off loopback", Config{Upstream: up, Listen: "0.0.0.0:8080"}, ""},
	} {
		err := c.cfg.Check()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want ErrConfig saying %q", c.name, err, c.want)
		case err != nil && strings.Contains(err.Error(), "secretpw"):
			t.Errorf("%s: %v quotes the password", c.name, err)
		}
	}
}
