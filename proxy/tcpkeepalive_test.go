package proxy

import (
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wstap/wstap/internal/testkit"
)

// ssTimers returns the timer column ss -tnoi prints for the TCP connection
// from local to peer ("" when it shows none), and whether it was found.
func ssTimers(t *testing.T, ss, local, peer string) (string, bool) {
	t.Helper()
	out, err := exec.Command(ss, "-tnoi").Output()
	if err != nil {
		t.Fatalf("ss -tnoi: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || strings.HasPrefix(line, "\t") || f[3] != local || f[4] != peer {
			continue
		}
		for _, x := range f[5:] {
			if strings.HasPrefix(x, "timer:") {
				return x, true
			}
		}
		return "", true
	}
	return "", false
}

// TestNoTCPKeepAliveByDefault: wstap's sockets on both legs, in reverse and
// in forward mode, carry no keep-alive timer unless Config.TCPKeepAlive
// (--tcp-keepalive) asks for one (transparency rule 2).
func TestNoTCPKeepAliveByDefault(t *testing.T) {
	ss := testkit.NeedTool(t, "ss")
	for _, c := range []struct {
		name    string
		forward bool
		ka      time.Duration
	}{{"reverse", false, 0}, {"reverse 5s", false, 5 * time.Second}, {"forward", true, 0}, {"forward 5s", true, 5 * time.Second}} {
		t.Run(c.name, func(t *testing.T) {
			upURL, _ := wsServer(t, false, echo)
			upAddr := strings.TrimPrefix(upURL, "ws://")
			p := startTestProxy(t, upURL, false, nil, func(cfg *Config) {
				cfg.TCPKeepAlive = c.ka
				if c.forward {
					cfg.Upstream = nil
				}
			})
			d := p.dialer()
			target := p.url("/")
			if c.forward {
				d.Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: p.srv.Addr().String()})
				target = upURL + "/"
			}
			cl, _, err := d.Dial(target, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			cl.WriteMessage(websocket.TextMessage, []byte("hi"))
			cl.ReadMessage()
			legs := map[string][2]string{
				"client leg":   {p.srv.Addr().String(), cl.UnderlyingConn().LocalAddr().String()},
				"upstream leg": {"", upAddr},
			}
			for leg, a := range legs {
				local := a[0]
				if local == "" {
					local = upstreamLocal(t, ss, upAddr)
				}
				// A retransmission timer ("on") hides the keep-alive
				// one while data is unacknowledged: wait until it is gone.
				timer, ok := ssTimers(t, ss, local, a[1])
				for end := time.Now().Add(3 * time.Second); ok && strings.HasPrefix(timer, "timer:(on") && time.Now().Before(end); {
					time.Sleep(50 * time.Millisecond)
					timer, ok = ssTimers(t, ss, local, a[1])
				}
				if !ok {
					t.Fatalf("%s %s → %s not in ss -tnoi", leg, local, a[1])
				}
				if has := strings.Contains(timer, "keepalive"); has != (c.ka > 0) {
					t.Errorf("%s: ss -tnoi shows %q with TCPKeepAlive %s", leg, timer, c.ka)
				}
			}
		})
	}
}

// upstreamLocal is the local address of the one connection to upAddr.
func upstreamLocal(t *testing.T, ss, upAddr string) string {
	t.Helper()
	out, err := exec.Command(ss, "-tnH", "dst", upAddr).Output()
	if err != nil {
		t.Fatalf("ss -tn dst %s: %v", upAddr, err)
	}
	f := strings.Fields(string(out))
	if len(f) < 5 {
		t.Fatalf("no connection to %s in ss: %q", upAddr, out)
	}
	return f[3]
}
