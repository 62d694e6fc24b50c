package capture

import "testing"

func TestRedactURL(t *testing.T) {
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJlLXNlY3JldA"
	for _, c := range []struct{ in, want string }{
		{"wss://h:443/chat?access_token=AT-9f8e7d&room=1", "wss://h:443/chat?access_token=[redacted]&room=1"},
		{"/chat?room=1&api-key=zz&sig=aa&X-Amz-Security-Token=q", "/chat?room=1&api-key=[redacted]&sig=[redacted]&X-Amz-Security-Token=[redacted]"},
		{"wss://user:pw@h/x", "wss://user:[redacted]@h/x"},
		{"https://h/cb#id_token=abc&state=s", "https://h/cb#id_token=[redacted]&state=s"},
		{"wss://h/t/" + jwt + "/x", "wss://h/t/[redacted]/x"},
		{"wss://h/chat?monkey=1", "wss://h/chat?monkey=1"},
		{"", ""},
	} {
		if got := RedactURL(c.in); got != c.want {
			t.Errorf("RedactURL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestIsSecretParam(t *testing.T) {
	for _, c := range []struct {
		name string
		want bool
	}{
		{"access_token", true}, {"access%5Ftoken", true}, {"api+key", false}, {"X-Amz-Security-Token", true},
		{"room", false}, {"Sec-WebSocket-Key", false}, {"%zz", false},
	} {
		if got := IsSecretParam(c.name); got != c.want {
			t.Errorf("IsSecretParam(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}
